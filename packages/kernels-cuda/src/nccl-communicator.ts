/**
 * NCCL all-reduce across the GPUs of one process: one {@link CudaBackend} per device (each with its
 * own stream) and one communicator per device from `ncclCommInitAll`, as the issue prescribes ("one
 * process drives all local GPUs"). NCCL is the distributed engine; nothing here is home-made.
 * NVLink multicast stays off (`NCCL_NVLS_ENABLE=0` unless the environment says otherwise).
 *
 * @packageDocumentation
 */
import { BackendError, ValidationError } from '@fairkv/core';
import type { DeviceBuffer } from '@fairkv/kernels';
import type { CudaBackend } from './cuda-backend.js';
import { CudaBuffer } from './cuda-buffer.js';
import { NativeDTypeCode } from './native.js';

/** An NCCL communicator over several CUDA backends of this process (one per device). */
export class NcclCommunicator {
  readonly #backends: readonly CudaBackend[];
  readonly #group: number;
  #disposed = false;

  /** @internal Use {@link createNcclCommunicator}. */
  constructor(backends: readonly CudaBackend[], group: number) {
    this.#backends = backends;
    this.#group = group;
  }

  /** Number of ranks (devices). */
  get size(): number {
    return this.#backends.length;
  }

  /**
   * Enqueues an in-place sum all-reduce: `buffers[i]` belongs to backend `i`; on completion every
   * buffer holds the element-wise sum of the first `elementCount` elements of all of them. Ordered
   * after earlier work on each backend's stream, like any kernel.
   */
  allReduceSum(buffers: readonly DeviceBuffer[], elementCount: number): void {
    if (this.#disposed) throw new BackendError('the NCCL communicator is disposed');
    if (buffers.length !== this.#backends.length) {
      throw new ValidationError(
        `buffers: expected ${this.#backends.length} buffers (one per device), got ${buffers.length}`,
        [{ path: '$.buffers', message: `expected ${this.#backends.length} buffers` }],
      );
    }
    const dtype = buffers[0]?.dtype;
    const pointers = buffers.map((buffer, rank) => {
      if (!(buffer instanceof CudaBuffer) || buffer.owner !== this.#backends[rank] || buffer.pointer === undefined) {
        throw new BackendError(`buffers[${rank}] ('${buffer.label}') is not a live buffer of device rank ${rank}`);
      }
      if (
        buffer.dtype !== dtype ||
        elementCount > buffer.elementCount ||
        !Number.isInteger(elementCount) ||
        elementCount < 0
      ) {
        throw new ValidationError(
          `buffers[${rank}]: expected dtype ${dtype} and at least ${elementCount} elements, got ${buffer.dtype}[${buffer.elementCount}]`,
          [{ path: `$.buffers[${rank}]`, message: `expected ${dtype}[>=${elementCount}]` }],
        );
      }
      return buffer.pointer;
    });
    if (elementCount === 0 || dtype === undefined) return;
    const native = this.#backends[0]!.native;
    try {
      native.ncclAllReduce(
        this.#group,
        this.#backends.map((backend) => backend.nativeContext),
        pointers,
        elementCount,
        NativeDTypeCode[dtype],
      );
    } catch (error) {
      throw new BackendError(`NCCL all-reduce failed: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Destroys the communicators (the backends stay usable). Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#backends[0]?.native.ncclDestroyGroup(this.#group);
  }
}

/**
 * Creates one NCCL communicator per backend's device with `ncclCommInitAll`. The backends must be
 * on distinct devices of this process. Throws `BackendError` when NCCL cannot be loaded.
 */
export function createNcclCommunicator(backends: readonly CudaBackend[]): NcclCommunicator {
  if (backends.length === 0)
    throw new ValidationError('backends: expected at least one', [{ path: '$.backends', message: 'empty' }]);
  const devices = new Set(backends.map((backend) => backend.device));
  if (devices.size !== backends.length) {
    throw new ValidationError('backends: expected one backend per distinct device', [
      { path: '$.backends', message: `devices ${backends.map((b) => b.device).join(', ')} repeat` },
    ]);
  }
  const native = backends[0]!.native;
  const nccl = native.libraryInfo().nccl;
  if (!nccl.available) throw new BackendError(`NCCL unavailable: ${nccl.error}`);
  try {
    return new NcclCommunicator(backends, native.ncclCreateGroup(backends.map((backend) => backend.nativeContext)));
  } catch (error) {
    throw new BackendError(`ncclCommInitAll failed: ${(error as Error).message}`, { cause: error });
  }
}
