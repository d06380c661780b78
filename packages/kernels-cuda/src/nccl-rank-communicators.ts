/**
 * Per-rank communicators over one in-process NCCL group, shaped like the runtime's `Communicator`
 * (`@fairkv/runtime`: rank, size, allReduceSum, allReduceDeviceSum, dispose) without depending on it.
 * The runtime drives every device of one process as an async task; each rank calls the collective,
 * and when all `size` ranks have arrived the group issues one grouped NCCL all-reduce (device
 * buffers) or sums the host arrays in rank order (host path, bit-identical on every rank).
 *
 * @packageDocumentation
 */
import { BackendError, ValidationError } from '@fairkv/core';
import type { DeviceBuffer } from '@fairkv/kernels';
import type { CudaBackend } from './cuda-backend.js';
import { createNcclCommunicator, type NcclCommunicator } from './nccl-communicator.js';

/** One rank's view of an NCCL group; structurally a `@fairkv/runtime` `Communicator`. */
export interface NcclRankCommunicator {
  readonly rank: number;
  readonly size: number;
  /** Sums `data` over all ranks in place (host arrays, summed in rank order 0..size-1). */
  allReduceSum(data: Float32Array): Promise<void>;
  /** Sums the first `elementCount` elements of an f32 buffer of this rank's backend over all ranks, on the GPUs. */
  allReduceDeviceSum(buffer: DeviceBuffer<'f32'>, elementCount: number): Promise<void>;
  /** True where `allReduceDeviceSum` goes through the backend's graph steps (a rank per thread). */
  readonly graphSteps?: boolean;
  /**
   * Multi-process groups (`joinNcclRankOverTcp`): aborts this rank's communicator and tells the other
   * ranks to abort theirs, with `reason`; for a process whose device failed while it lives on.
   */
  abort?(reason: string): Promise<void>;
  dispose(): void;
}

/** The collective the rendezvous issues once every rank has arrived (NCCL in production). */
export type GroupAllReduce = (buffers: readonly DeviceBuffer[], elementCount: number) => void;

interface Arrival<T> {
  value: T;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Builds `size` rank communicators around one group all-reduce. Exported for tests and for other
 * device collectives; {@link createNcclRankCommunicators} is the usual entry point.
 */
export function createRankCommunicators(
  size: number,
  groupAllReduce: GroupAllReduce,
  onDispose: () => void = () => {},
): NcclRankCommunicator[] {
  let hostArrivals: (Arrival<Float32Array> | undefined)[] = new Array(size);
  let deviceArrivals: (Arrival<DeviceBuffer> | undefined)[] = new Array(size);
  let deviceCount = -1;
  let disposed = false;

  const arrive = <T>(
    arrivals: (Arrival<T> | undefined)[],
    rank: number,
    value: T,
    complete: (values: T[]) => void,
  ): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (disposed) {
        reject(new BackendError('the NCCL rank communicators are disposed'));
        return;
      }
      if (arrivals[rank] !== undefined) {
        reject(new BackendError(`rank ${rank} entered the same collective twice`));
        return;
      }
      arrivals[rank] = { value, resolve, reject };
      for (let other = 0; other < size; other++) if (arrivals[other] === undefined) return;
      const all = arrivals as Arrival<T>[];
      try {
        complete(all.map((arrival) => arrival.value));
        for (const arrival of all) arrival.resolve();
      } catch (error) {
        for (const arrival of all) arrival.reject(error);
      }
    });

  return Array.from({ length: size }, (_, rank) => ({
    rank,
    size,
    allReduceSum(data: Float32Array): Promise<void> {
      const promise = arrive(hostArrivals, rank, data, (arrays) => {
        hostArrivals = new Array(size);
        const length = arrays[0]!.length;
        if (arrays.some((array) => array.length !== length)) {
          throw new ValidationError(
            `allReduceSum: ranks passed different lengths ${arrays.map((a) => a.length).join(', ')}`,
            [{ path: '$.data', message: 'expected the same length on every rank' }],
          );
        }
        const sum = new Float32Array(length);
        for (const array of arrays) for (let i = 0; i < length; i++) sum[i] = sum[i]! + array[i]!;
        for (const array of arrays) array.set(sum);
      });
      return promise;
    },
    allReduceDeviceSum(buffer: DeviceBuffer<'f32'>, elementCount: number): Promise<void> {
      if (deviceCount >= 0 && deviceCount !== elementCount) {
        return Promise.reject(
          new ValidationError(
            `allReduceDeviceSum: rank ${rank} passed ${elementCount} elements, others ${deviceCount}`,
            [{ path: '$.elementCount', message: 'expected the same count on every rank' }],
          ),
        );
      }
      deviceCount = elementCount;
      return arrive(deviceArrivals, rank, buffer as DeviceBuffer, (buffers) => {
        deviceArrivals = new Array(size);
        deviceCount = -1;
        groupAllReduce(buffers, elementCount);
      });
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      for (let other = 0; other < size; other++) {
        hostArrivals[other]?.reject(new BackendError('the NCCL rank communicators were disposed'));
        deviceArrivals[other]?.reject(new BackendError('the NCCL rank communicators were disposed'));
      }
      onDispose();
    },
  }));
}

/**
 * One rank communicator per backend (one CUDA device each, one process), over an NCCL group from
 * `ncclCommInitAll`. The device all-reduce is enqueued on every backend's stream once all ranks
 * called it; later work on those streams sees the sums.
 */
export function createNcclRankCommunicators(backends: readonly CudaBackend[]): NcclRankCommunicator[] {
  const group: NcclCommunicator = createNcclCommunicator(backends);
  return createRankCommunicators(
    backends.length,
    (buffers, elementCount) => group.allReduceSum(buffers, elementCount),
    () => group.dispose(),
  );
}
