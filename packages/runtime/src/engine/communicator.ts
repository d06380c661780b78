import type { DeviceBuffer } from '@fairkv/kernels';

/**
 * Collective communication between the devices of one model. All-reduce is not a kernel (DESIGN.md):
 * it belongs here. Every implementation sums contributions in rank order 0..size-1, so every rank gets
 * bit-identical results and the replicated residual streams never drift apart.
 */
export interface Communicator {
  /** This device's rank, 0-based. */
  readonly rank: number;
  /** Number of devices. */
  readonly size: number;
  /** Sums `data` element-wise over all ranks, in place; every rank must call it with the same length. */
  allReduceSum(data: Float32Array): Promise<void>;
  /**
   * Optional device-side all-reduce (e.g. NCCL on CUDA buffers): sums the first `elementCount`
   * elements of an f32 device buffer over all ranks, in place, without a host round trip. When
   * present the runtime uses it instead of download + {@link allReduceSum} + upload.
   */
  allReduceDeviceSum?(buffer: DeviceBuffer<'f32'>, elementCount: number): Promise<void>;
  /**
   * True where {@link allReduceDeviceSum} is enqueued through the backend's graph steps
   * (`Backend.beginGraphStep`; the CUDA NCCL rank of a device worker): the runtime then runs
   * multi-device decode steps as graph steps too. Otherwise they run one operation at a time.
   */
  readonly graphSteps?: boolean;
  /** Releases resources; idempotent. */
  dispose(): void;
}

/** Thrown by an all-reduce that another device's failure aborted (see {@link abortLocalCommunicators}). */
export class CollectiveAbortedError extends Error {
  constructor(rank: number, how: string) {
    super(`all-reduce on rank ${rank} aborted: another device failed (${how})`);
    this.name = 'CollectiveAbortedError';
  }
}

/** Communicator of a single device: all-reduce is the identity. */
export class SoloCommunicator implements Communicator {
  readonly rank = 0;
  readonly size = 1;
  async allReduceSum(_data: Float32Array): Promise<void> {}
  dispose(): void {}
}

/**
 * Communicators for devices that run in one thread (each device an async task): contributions meet in
 * memory. Used for in-process multi-device runs and tests.
 */
export function createLocalCommunicators(size: number): Communicator[] {
  let pending: { data: Float32Array; resolve: () => void; reject: (error: Error) => void }[] = [];
  let length = -1;
  let aborted = false;
  const communicators: Communicator[] = [];
  const abort = () => {
    aborted = true;
    const waiting = pending;
    pending = [];
    waiting.forEach((entry, rank) => {
      entry?.reject(new CollectiveAbortedError(rank, 'in-thread devices'));
    });
  };
  for (let rank = 0; rank < size; rank++) {
    communicators.push({
      rank,
      size,
      allReduceSum(data: Float32Array): Promise<void> {
        if (aborted) return Promise.reject(new CollectiveAbortedError(rank, 'in-thread devices'));
        if (length === -1) length = data.length;
        else if (data.length !== length) {
          return Promise.reject(
            new Error(`all-reduce length mismatch: rank ${rank} sent ${data.length}, others ${length}`),
          );
        }
        return new Promise<void>((resolve, reject) => {
          pending[rank] = { data, resolve, reject };
          if (pending.filter(Boolean).length < size) return;
          const contributions = pending;
          pending = [];
          length = -1;
          const sum = new Float32Array(data.length);
          for (const contribution of contributions) {
            const values = contribution.data;
            for (let i = 0; i < sum.length; i++) sum[i]! += values[i]!;
          }
          for (const contribution of contributions) {
            contribution.data.set(sum);
            contribution.resolve();
          }
        });
      },
      dispose() {},
    });
  }
  localAborts.set(communicators, abort);
  return communicators;
}

const localAborts = new WeakMap<Communicator[], () => void>();

/**
 * Aborts a group from {@link createLocalCommunicators}: pending and later all-reduces reject with
 * {@link CollectiveAbortedError}, so devices waiting for one that failed return. Idempotent; a group
 * from elsewhere is left alone (returns false).
 */
export function abortLocalCommunicators(communicators: Communicator[]): boolean {
  const abort = localAborts.get(communicators);
  abort?.();
  return abort !== undefined;
}

/** The shared memory of a {@link SharedMemoryCommunicator} group, created once and sent to each worker. */
export interface SharedCommunicatorState {
  size: number;
  /** Floats per rank slot; longer all-reduces go in chunks. */
  slotElements: number;
  /** `[generation, arrived, aborted]` barrier words. */
  control: SharedArrayBuffer;
  /** `[size][slotElements]` f32 contributions. */
  slots: SharedArrayBuffer;
}

/** Allocates the shared memory for a worker-thread communicator group. */
export function createSharedCommunicatorState(size: number, slotElements = 1 << 16): SharedCommunicatorState {
  return {
    size,
    slotElements,
    control: new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT),
    slots: new SharedArrayBuffer(size * slotElements * Float32Array.BYTES_PER_ELEMENT),
  };
}

/**
 * Aborts a {@link SharedMemoryCommunicator} group from any thread (the coordinator, once a device
 * failed): ranks waiting in an all-reduce, and every later one, throw {@link CollectiveAbortedError}.
 */
export function abortSharedCommunicators(state: SharedCommunicatorState): void {
  const control = new Int32Array(state.control);
  Atomics.store(control, ABORTED, 1);
  Atomics.notify(control, GENERATION);
}

const GENERATION = 0;
const ARRIVED = 1;
const ABORTED = 2;

/**
 * All-reduce between worker threads through a SharedArrayBuffer: each rank writes its slot, a
 * generation barrier (Atomics.wait/notify) lets every rank sum all slots in rank order, and a second
 * barrier keeps a fast rank from overwriting its slot before the others have read it.
 */
export class SharedMemoryCommunicator implements Communicator {
  readonly rank: number;
  readonly size: number;
  readonly #control: Int32Array;
  readonly #slots: Float32Array;
  readonly #slotElements: number;
  readonly #timeoutMs: number;

  constructor(state: SharedCommunicatorState, rank: number, timeoutMs = 60_000) {
    this.rank = rank;
    this.size = state.size;
    this.#control = new Int32Array(state.control);
    this.#slots = new Float32Array(state.slots);
    this.#slotElements = state.slotElements;
    this.#timeoutMs = timeoutMs;
  }

  #barrier(): void {
    const generation = Atomics.load(this.#control, GENERATION);
    this.#throwIfAborted();
    if (Atomics.add(this.#control, ARRIVED, 1) === this.size - 1) {
      Atomics.store(this.#control, ARRIVED, 0);
      Atomics.add(this.#control, GENERATION, 1);
      Atomics.notify(this.#control, GENERATION);
      return;
    }
    while (Atomics.load(this.#control, GENERATION) === generation) {
      this.#throwIfAborted();
      if (Atomics.wait(this.#control, GENERATION, generation, this.#timeoutMs) === 'timed-out') {
        throw new Error(
          `all-reduce barrier timed out after ${this.#timeoutMs} ms on rank ${this.rank}: a device stopped`,
        );
      }
    }
  }

  #throwIfAborted(): void {
    if (Atomics.load(this.#control, ABORTED) !== 0) throw new CollectiveAbortedError(this.rank, 'worker threads');
  }

  async allReduceSum(data: Float32Array): Promise<void> {
    for (let start = 0; start < data.length; start += this.#slotElements) {
      const count = Math.min(this.#slotElements, data.length - start);
      this.#slots.set(data.subarray(start, start + count), this.rank * this.#slotElements);
      this.#barrier();
      const out = data.subarray(start, start + count);
      out.fill(0);
      for (let r = 0; r < this.size; r++) {
        const offset = r * this.#slotElements;
        for (let i = 0; i < count; i++) out[i]! += this.#slots[offset + i]!;
      }
      this.#barrier();
    }
  }

  dispose(): void {}
}
