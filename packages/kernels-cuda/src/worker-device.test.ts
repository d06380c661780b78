import { BackendError, ValidationError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import type { CudaBackend } from './cuda-backend.js';
import { abortNcclRanks, joinNcclRank } from './nccl-rank.js';
import { probeCuda } from './probe.js';
import { abortWorkerDevices, createWorkerDevice, cudaWorkerBackend } from './worker-device.js';

const cuda = probeCuda();
// never used: validation fails before the backend is touched
const noBackend = {} as CudaBackend;

describe('NCCL ranks and CUDA worker devices: bad input', () => {
  it('joinNcclRank names the field and the value', () => {
    const id = new Uint8Array(128);
    expect(() => joinNcclRank({ backend: noBackend, uniqueId: new Uint8Array(16), rank: 0, size: 2 })).toThrow(
      /uniqueId: expected 128 bytes from createNcclUniqueId\(\), got 16 bytes/,
    );
    expect(() => joinNcclRank({ backend: noBackend, uniqueId: id, rank: 2, size: 2 })).toThrow(
      /rank: expected an integer in \[0, 2\), got 2/,
    );
    expect(() => joinNcclRank({ backend: noBackend, uniqueId: id, rank: 0, size: 0 })).toThrow(ValidationError);
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
