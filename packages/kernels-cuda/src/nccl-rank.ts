/**
 * One NCCL rank per thread or process, through `ncclCommInitRank` and a shared unique id: the way a
 * worker thread per GPU (or a process per GPU, or per node) joins one group. The id comes from
 * {@link createNcclUniqueId} in one place and travels to every rank (a worker message, or a TCP
 * rendezvous between processes); every rank then calls {@link joinNcclRank} at the same time, since
 * `ncclCommInitRank` blocks until all `size` ranks have joined.
 *
 * @packageDocumentation
 */
import { BackendError, ValidationError } from '@fairkv/core';
import type { DeviceBuffer } from '@fairkv/kernels';
import type { CudaBackend } from './cuda-backend.js';
import { CudaBuffer } from './cuda-buffer.js';
import { loadNativeAddon } from './load-native.js';
import { NativeDTypeCode } from './native.js';
import type { NcclRankCommunicator } from './nccl-rank-communicators.js';
import { probeCuda } from './probe.js';

/** Bytes of an `ncclUniqueId`. */
export const NCCL_UNIQUE_ID_BYTES = 128;

/** `ncclGetUniqueId`: the 128-byte id every rank of a new group joins with. Needs NCCL here. */
export function createNcclUniqueId(): Uint8Array {
  const { addon } = loadNativeAddon();
  const nccl = addon.libraryInfo().nccl;
  if (!nccl.available) throw new BackendError(`NCCL unavailable: ${nccl.error}`);
  return addon.ncclUniqueId();
}

/**
 * Aborts every rank of this process that joined the group `uniqueId` (`ncclCommAbort`, on a native
 * thread of its own, so it may be called from any thread while the ranks' threads wait): for the
 * coordinator once one rank's device failed, since the other ranks would wait in their collectives for
 * it forever. Their device work waiting in a collective ends (its results are undefined), and their
 * later all-reduces throw; only disposing them is left. Resolves to how many communicators it aborted.
 * Idempotent.
 * @throws ValidationError for an id that is not 128 bytes.
 */
export async function abortNcclRanks(uniqueId: Uint8Array): Promise<number> {
  checkUniqueId(uniqueId);
  // without a usable CUDA addon no rank can exist in this process
  if (!probeCuda().available) return 0;
  const { addon } = loadNativeAddon();
  if (!addon.libraryInfo().nccl.available) return 0;
  return addon.ncclAbortRanks(uniqueId);
}

function checkUniqueId(uniqueId: Uint8Array): void {
  if (!(uniqueId instanceof Uint8Array) || uniqueId.length !== NCCL_UNIQUE_ID_BYTES) {
    throw new ValidationError(
      `uniqueId: expected ${NCCL_UNIQUE_ID_BYTES} bytes from createNcclUniqueId(), got ${describe(uniqueId)}`,
      [{ path: '$.uniqueId', message: `expected a Uint8Array of ${NCCL_UNIQUE_ID_BYTES} bytes` }],
    );
  }
}

/**
 * Checks a rank and group size: `size` an integer >= 1, `0 <= rank < size`.
 * @throws ValidationError naming the field and the value.
 */
export function validateRank(rank: number, size: number): void {
  if (!Number.isInteger(size) || size < 1) {
    throw new ValidationError(`size: expected an integer >= 1, got ${size}`, [
      { path: '$.size', message: 'expected an integer >= 1' },
    ]);
  }
  if (!Number.isInteger(rank) || rank < 0 || rank >= size) {
    throw new ValidationError(`rank: expected an integer in [0, ${size}), got ${rank}`, [
      { path: '$.rank', message: `expected 0 <= rank < ${size}` },
    ]);
  }
}

/** What {@link joinNcclRank} needs. */
export interface JoinNcclRankOptions {
  /** The backend of this rank's GPU; collectives run on its stream. */
  backend: CudaBackend;
  /** The group's id from {@link createNcclUniqueId}, the same bytes on every rank. */
  uniqueId: Uint8Array;
  /** This rank, `0 <= rank < size`. */
  rank: number;
  /** Ranks in the group. */
  size: number;
  /**
   * Gives up waiting for the other ranks when it aborts (one of them failed before it joined): the join
   * rejects with a `BackendError` carrying the signal's reason. NCCL's init cannot be cancelled, so its
   * thread is left to the process.
   */
  signal?: AbortSignal;
  /**
   * `dispose` aborts the communicator (`ncclCommAbort`) instead of destroying it (`ncclCommDestroy`, which
   * waits for every collective still in flight, so for the other ranks): for ranks whose peers may be gone
   * without this rank knowing yet (`joinNcclRankOverTcp` sets it). Dispose after the last collective
   * completed either way.
   */
  abortOnDispose?: boolean;
}

/** A rank's `ncclCommInitRank` under way on its native thread. */
export interface PendingNcclInit {
  result: Promise<number>;
  abandon(): void;
}

/**
 * Starts a rank's init (the addon's `ncclStartRank`) and polls it from this thread (every 1 ms at first,
 * then up to every 20 ms): the init's thread calls nothing of Node's, so a process may exit while it still
 * waits in NCCL. The poll keeps the event loop alive until the group formed or `abandon()`.
 */
function startNcclInit(backend: CudaBackend, uniqueId: Uint8Array, size: number, rank: number): PendingNcclInit {
  const native = backend.native;
  const pending = native.ncclStartRank(uniqueId, size, rank, backend.nativeContext);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let abandoned = false;
  const result = new Promise<number>((resolve, reject) => {
    const poll = (delay: number) => {
      if (abandoned) return;
      let group: number | undefined;
      try {
        group = native.ncclPollRank(pending);
      } catch (error) {
        reject(error);
        return;
      }
      if (group !== undefined) resolve(group);
      else timer = setTimeout(() => poll(Math.min(20, delay * 2)), delay);
    };
    poll(1);
  });
  return {
    result,
    abandon() {
      if (abandoned) return;
      abandoned = true;
      clearTimeout(timer);
      native.ncclAbandonRank(pending);
    },
  };
}

function reasonOf(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason.message : String(reason);
}

/**
 * Waits for a rank's init, or abandons it once `signal` aborts. `what` names the rank in errors.
 * Exported for tests.
 * @internal
 */
export function awaitNcclInit(
  pending: PendingNcclInit,
  signal: AbortSignal | undefined,
  what: string,
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const giveUp = () => {
      pending.abandon();
      reject(
        new BackendError(`${what}: stopped waiting for the other ranks: ${reasonOf(signal!)}`, {
          cause: signal!.reason,
        }),
      );
    };
    if (signal?.aborted) {
      giveUp();
      return;
    }
    signal?.addEventListener('abort', giveUp, { once: true });
    pending.result.then(
      (group) => {
        signal?.removeEventListener('abort', giveUp);
        resolve(group);
      },
      (error: unknown) => {
        signal?.removeEventListener('abort', giveUp);
        reject(new BackendError(`${what} failed: ${(error as Error).message}`, { cause: error }));
      },
    );
  });
}

/**
 * Joins an NCCL group as one rank and resolves to its communicator once every rank joined
 * (`ncclCommInitRank`, on a native thread of its own, so this thread stays free: a worker whose peer failed
 * can still be told to stop, or stop waiting through `signal`). `allReduceDeviceSum` enqueues
 * `ncclAllReduce` on the backend's stream and resolves at once (later work on the stream sees the sums);
 * `allReduceSum` on host arrays goes through a device buffer. Every rank gets the same bits (NCCL's
 * reduction result is identical on all ranks). After {@link abortNcclRanks} on its group, its all-reduces
 * throw a `BackendError`.
 * @throws (rejects) ValidationError for a bad id, rank or size; BackendError when NCCL is unavailable, its
 * init fails, or `signal` aborted first.
 */
export async function joinNcclRank(options: JoinNcclRankOptions): Promise<NcclRankCommunicator> {
  const { backend, uniqueId, rank, size, signal, abortOnDispose = false } = options;
  checkUniqueId(uniqueId);
  validateRank(rank, size);
  const native = backend.native;
  const nccl = native.libraryInfo().nccl;
  if (!nccl.available) throw new BackendError(`NCCL unavailable: ${nccl.error}`);
  const group = await awaitNcclInit(
    startNcclInit(backend, uniqueId, size, rank),
    signal,
    `ncclCommInitRank (rank ${rank} of ${size})`,
  );
  let disposed = false;
  let scratch: DeviceBuffer<'f32'> | undefined;
  const allReduce = (buffer: DeviceBuffer<'f32'>, elementCount: number): void => {
    if (disposed) throw new BackendError(`NCCL rank ${rank} is disposed`);
    if (!(buffer instanceof CudaBuffer) || buffer.owner !== backend || buffer.pointer === undefined) {
      throw new BackendError(`buffer '${buffer.label}' is not a live buffer of rank ${rank}'s backend`);
    }
    if (
      buffer.dtype !== 'f32' ||
      !Number.isInteger(elementCount) ||
      elementCount < 0 ||
      elementCount > buffer.elementCount
    ) {
      throw new ValidationError(
        `elementCount: expected an integer in [0, ${buffer.elementCount}] of an f32 buffer, got ${elementCount} (${buffer.dtype})`,
        [{ path: '$.elementCount', message: `expected 0..${buffer.elementCount}` }],
      );
    }
    if (elementCount === 0) return;
    // through the backend, so that a graph step records and replays it with the step's kernels
    backend.enqueueExternal('nccl-all-reduce', [buffer], [elementCount], () => {
      try {
        native.ncclAllReduce(group, [backend.nativeContext], [buffer.pointer!], elementCount, NativeDTypeCode.f32);
      } catch (error) {
        throw new BackendError(`NCCL all-reduce on rank ${rank} failed: ${(error as Error).message}`, { cause: error });
      }
    });
  };
  return {
    rank,
    size,
    graphSteps: true,
    async allReduceDeviceSum(buffer, elementCount) {
      allReduce(buffer, elementCount);
    },
    async allReduceSum(data) {
      if (!scratch || scratch.elementCount < data.length) {
        if (scratch) backend.disposeBuffer(scratch);
        scratch = backend.createBuffer({
          dtype: 'f32',
          elementCount: Math.max(data.length, 1),
          label: 'nccl-host-sum',
        });
      }
      backend.upload(scratch, data);
      allReduce(scratch, data.length);
      data.set((await backend.download(scratch, { elementCount: data.length })) as Float32Array);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      if (scratch) backend.disposeBuffer(scratch);
      // graphs that captured this rank's all-reduces go first, and the stream is drained
      backend.dropGraphs();
      native.ncclDestroyGroup(group, abortOnDispose);
    },
  };
}

function describe(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  return value === null ? 'null' : typeof value;
}
