/**
 * The CUDA device of one runtime worker thread: `@fairkv/runtime` imports this module in each device
 * worker (see {@link cudaWorkerBackend}) and calls {@link createWorkerDevice}, so every GPU is driven
 * from its own thread with its own CUDA backend and its own NCCL rank (`ncclCommInitRank`, the workers
 * joining one group at the same time). Kernel launches of different GPUs then overlap on the host.
 *
 * @packageDocumentation
 */
import { BackendError, ValidationError } from '@fairkv/core';
import { type CudaBackend, createCudaBackend } from './cuda-backend.js';
import { loadNativeAddon } from './load-native.js';
import { abortNcclRanks, joinNcclRank, NCCL_UNIQUE_ID_BYTES } from './nccl-rank.js';
import type { NcclRankCommunicator } from './nccl-rank-communicators.js';

/** What a runtime worker passes to {@link createWorkerDevice}. */
export interface CudaWorkerDeviceSetup {
  /** The runtime device (the plan's device index, also the NCCL rank). */
  device: number;
  /** Devices of the engine (NCCL ranks). */
  deviceCount: number;
  /** {@link CudaWorkerOptions}, as built by {@link cudaWorkerBackend}. */
  options: unknown;
}

/** Options the worker module receives (structured-cloned from the coordinator). */
export interface CudaWorkerOptions {
  /** The NCCL group's id (128 bytes); one per engine. Absent when NCCL did not load (one device only). */
  uniqueId?: Uint8Array;
  /** Why NCCL did not load, when `uniqueId` is absent. */
  ncclUnavailable?: string;
  /** CUDA device of each runtime device (default: runtime device i on GPU i). */
  gpus?: number[];
}

/** A runtime backend module: the module every device worker imports, and its options. */
export interface CudaWorkerBackendSpec {
  module: string;
  options: CudaWorkerOptions;
}

/** Options of {@link cudaWorkerBackend}. */
export interface CudaWorkerBackendOptions {
  /** CUDA device of each runtime device (default: runtime device i on GPU i). */
  gpus?: number[];
}

/**
 * The `backend` option of `@fairkv/runtime`'s `createInferenceEngine({ execution: 'workers' })` for CUDA:
 * each device worker creates its own CUDA backend and joins one NCCL group (a fresh unique id per
 * call, so call it once per engine). Needs CUDA here, and NCCL for more than one device.
 * @throws BackendError "CUDA backend unavailable: <reason>".
 */
export function cudaWorkerBackend(options: CudaWorkerBackendOptions = {}): CudaWorkerBackendSpec {
  const here = import.meta.url;
  const module = new URL(here.endsWith('.ts') ? './worker-device.ts' : './worker-device.js', here).href;
  const { addon } = loadNativeAddon();
  const nccl = addon.libraryInfo().nccl;
  return {
    module,
    options: {
      ...(nccl.available ? { uniqueId: addon.ncclUniqueId() } : { ncclUnavailable: nccl.error }),
      ...(options.gpus ? { gpus: [...options.gpus] } : {}),
    },
  };
}

function parseOptions(options: unknown, deviceCount: number): CudaWorkerOptions {
  const value = (options ?? {}) as Partial<CudaWorkerOptions>;
  if (deviceCount > 1 && value.uniqueId === undefined && value.ncclUnavailable !== undefined) {
    throw new BackendError(`NCCL unavailable, needed for ${deviceCount} devices: ${value.ncclUnavailable}`);
  }
  if (
    (deviceCount > 1 || value.uniqueId !== undefined) &&
    (!(value.uniqueId instanceof Uint8Array) || value.uniqueId.length !== NCCL_UNIQUE_ID_BYTES)
  ) {
    throw new ValidationError('options.uniqueId: expected the 128-byte NCCL id from cudaWorkerBackend()', [
      { path: '$.options.uniqueId', message: 'expected a Uint8Array of 128 bytes' },
    ]);
  }
  if (value.gpus !== undefined && (!Array.isArray(value.gpus) || value.gpus.length !== deviceCount)) {
    throw new ValidationError(`options.gpus: expected ${deviceCount} CUDA device numbers (one per runtime device)`, [
      { path: '$.options.gpus', message: `expected an array of ${deviceCount} integers` },
    ]);
  }
  return value as CudaWorkerOptions;
}

/**
 * Called by the runtime in the coordinator's thread once a device of the engine failed part-way
 * through a prefill or a decode step (the runtime's `AbortWorkerDevices`): aborts the engine's NCCL
 * ranks ({@link abortNcclRanks}), so that the other GPUs' workers, waiting in an all-reduce for the
 * failed one, return and the engine can stop instead of hanging. Does nothing for one device.
 */
export async function abortWorkerDevices(options: unknown): Promise<void> {
  const { uniqueId } = (options ?? {}) as Partial<CudaWorkerOptions>;
  if (uniqueId === undefined) return;
  await abortNcclRanks(uniqueId);
}

/**
 * Called by the runtime in a device worker thread: creates the CUDA backend of `setup.device` (on
 * `options.gpus[device]`, default the same GPU number) and, with several devices, a `connect` that joins
 * the NCCL group as rank `device` (it resolves once every worker joined; the runtime calls it only once
 * every device has created its backend, and ends the workers if one fails to join). Structurally the
 * runtime's `WorkerDevice`.
 */
export function createWorkerDevice(setup: CudaWorkerDeviceSetup): {
  backend: CudaBackend;
  connect?: () => Promise<NcclRankCommunicator>;
} {
  const options = parseOptions(setup.options, setup.deviceCount);
  const backend = createCudaBackend({ device: options.gpus?.[setup.device] ?? setup.device });
  if (setup.deviceCount === 1) return { backend };
  return {
    backend,
    connect: () => joinNcclRank({ backend, uniqueId: options.uniqueId!, rank: setup.device, size: setup.deviceCount }),
  };
}
