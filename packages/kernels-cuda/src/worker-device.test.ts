import { BackendError, ValidationError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import type { CudaBackend } from './cuda-backend.js';
import { abortNcclRanks, awaitNcclInit, joinNcclRank, type PendingNcclInit } from './nccl-rank.js';
import { probeCuda } from './probe.js';
import { abortWorkerDevices, createWorkerDevice, cudaWorkerBackend } from './worker-device.js';

const cuda = probeCuda();
// never used: validation fails before the backend is touched
const noBackend = {} as CudaBackend;

describe('NCCL ranks and CUDA worker devices: bad input', () => {
  it('joinNcclRank names the field and the value', async () => {
    const id = new Uint8Array(128);
    await expect(joinNcclRank({ backend: noBackend, uniqueId: new Uint8Array(16), rank: 0, size: 2 })).rejects.toThrow(
      /uniqueId: expected 128 bytes from createNcclUniqueId\(\), got 16 bytes/,
    );
    await expect(joinNcclRank({ backend: noBackend, uniqueId: id, rank: 2, size: 2 })).rejects.toThrow(
      /rank: expected an integer in \[0, 2\), got 2/,
    );
    await expect(joinNcclRank({ backend: noBackend, uniqueId: id, rank: 0, size: 0 })).rejects.toThrow(ValidationError);
  });

  it('a rank stops waiting for its init when the signal aborts, and reports a failed init by rank', async () => {
    let abandoned = 0;
    const never: PendingNcclInit = { result: new Promise<number>(() => {}), abandon: () => void abandoned++ };
    const forming = new AbortController();
    const waiting = awaitNcclInit(never, forming.signal, 'ncclCommInitRank (rank 0 of 2)');
    forming.abort(new Error('the connection to rank 1 closed before it left (its process is gone)'));
    await expect(waiting).rejects.toThrow(
      'ncclCommInitRank (rank 0 of 2): stopped waiting for the other ranks: the connection to rank 1 closed before it left (its process is gone)',
    );
    expect(abandoned).toBe(1);
    // already aborted: gives up at once
    await expect(awaitNcclInit(never, forming.signal, 'rank 0')).rejects.toThrow(BackendError);
    expect(abandoned).toBe(2);
    // NCCL's own failure, named by rank; a finished init resolves to its group, and a later abort changes nothing
    const failed = { result: Promise.reject(new Error('ncclCommInitRank: unhandled cuda error')), abandon() {} };
    await expect(awaitNcclInit(failed, undefined, 'ncclCommInitRank (rank 1 of 2)')).rejects.toThrow(
      'ncclCommInitRank (rank 1 of 2) failed: ncclCommInitRank: unhandled cuda error',
    );
    const late = new AbortController();
    await expect(
      awaitNcclInit({ result: Promise.resolve(7), abandon: () => void abandoned++ }, late.signal, 'r'),
    ).resolves.toBe(7);
    late.abort(new Error('too late'));
    expect(abandoned).toBe(2);
  });

  it('createWorkerDevice refuses options without the NCCL id or with a wrong GPU list', () => {
    expect(() => createWorkerDevice({ device: 0, deviceCount: 2, options: {} })).toThrow(
      /options\.uniqueId: expected the 128-byte NCCL id from cudaWorkerBackend\(\)/,
    );
    expect(() =>
      createWorkerDevice({ device: 0, deviceCount: 2, options: { ncclUnavailable: 'libnccl.so.2: not found' } }),
    ).toThrow(/NCCL unavailable, needed for 2 devices: libnccl.so.2: not found/);
    expect(() =>
      createWorkerDevice({ device: 0, deviceCount: 2, options: { uniqueId: new Uint8Array(128), gpus: [0] } }),
    ).toThrow(/options\.gpus: expected 2 CUDA device numbers/);
  });

  it('abortNcclRanks and abortWorkerDevices check the id; with no group of that id they abort nothing', async () => {
    await expect(abortNcclRanks(new Uint8Array(16))).rejects.toThrow(
      /uniqueId: expected 128 bytes from createNcclUniqueId\(\), got 16 bytes/,
    );
    await expect(abortWorkerDevices({ uniqueId: 'id' })).rejects.toThrow(ValidationError);
    // a fresh id: no rank of this process joined it (and without a GPU none can exist)
    await expect(abortNcclRanks(new Uint8Array(128).fill(7))).resolves.toBe(0);
    await expect(abortWorkerDevices({})).resolves.toBeUndefined();
  });

  it.skipIf(cuda.available)('cudaWorkerBackend reports CUDA as unavailable here, with the reason (no GPU)', () => {
    expect(() => cudaWorkerBackend()).toThrow(BackendError);
    expect(() => cudaWorkerBackend()).toThrow(/^CUDA backend unavailable: /);
  });
});
