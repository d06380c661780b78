import type { Backend } from '@fairkv/kernels';
import type { Communicator } from './communicator.js';

/**
 * A backend that each device worker thread creates for itself: the module every worker imports (a
 * package specifier or a file URL) and options passed to it (structured-cloned). The module exports
 * {@link CreateWorkerDevice} as `createWorkerDevice`, and optionally {@link AbortWorkerDevices} as
 * `abortWorkerDevices`. `@fairkv/kernels-cuda`'s `cudaWorkerBackend()` returns one, so every GPU is driven
 * from its own thread with its own NCCL rank.
 */
export interface WorkerBackendModule {
  module: string;
  options?: unknown;
}

/** What a device worker passes to its backend module. */
export interface WorkerDeviceSetup {
  /** The runtime device (the plan's device index and communicator rank). */
  device: number;
  /** Devices of the engine. */
  deviceCount: number;
  /** {@link WorkerBackendModule.options}. */
  options: unknown;
}

/**
 * A device as a backend module creates it: its backend and, optionally, its communicator (e.g. an
 * NCCL rank with a device-side all-reduce). Without one the worker all-reduces through shared memory.
 */
export interface WorkerDevice {
  backend: Backend;
  /** A communicator ready now. */
  communicator?: Communicator;
  /**
   * Creates the communicator once every device of the engine has created its backend; it may block
   * until all devices connected (NCCL's ncclCommInitRank). Keeping such waits out of
   * `createWorkerDevice` means a device that fails to start cannot leave the others waiting forever.
   * Returning undefined keeps the worker's default (shared-memory all-reduce).
   */
  connect?: () => Communicator | undefined | Promise<Communicator | undefined>;
}

/** The `createWorkerDevice` export of a {@link WorkerBackendModule}. */
export type CreateWorkerDevice = (setup: WorkerDeviceSetup) => WorkerDevice | Promise<WorkerDevice>;

/**
 * The optional `abortWorkerDevices` export of a {@link WorkerBackendModule}, called in the
 * coordinator's thread (with the module's options) once a device of the engine failed part-way through
 * a prefill or a decode step: it must release the other devices from the collectives they wait in for
 * the failed one (`@fairkv/kernels-cuda` aborts the engine's NCCL communicators), so that their calls
 * return and the engine can stop. Without it a device blocked in a collective stays blocked.
 */
export type AbortWorkerDevices = (options: unknown) => void | Promise<void>;

/** Whether `value` is a {@link WorkerBackendModule}. */
export function isWorkerBackendModule(value: unknown): value is WorkerBackendModule {
  return typeof value === 'object' && value !== null && typeof (value as WorkerBackendModule).module === 'string';
}
