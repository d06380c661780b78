/**
 * The whole Node-API surface of the CUDA addon (`build/Release/fairkv_cuda.node`, built from
 * `native/addon.cc`), typed in one place. Nothing else in the package touches the addon untyped.
 *
 * Device pointers cross the boundary as `bigint`; a *context* (a device, its stream, its cuBLAS
 * handle and scratch workspace) is a small integer id. Every CUDA failure is thrown as an `Error`
 * whose `cudaError` property holds the `cudaError_t` value (2 = cudaErrorMemoryAllocation).
 *
 * @packageDocumentation
 */

/** Dtype codes shared with `native/common.h` (`enum class DType`). */
export const NativeDTypeCode = { f32: 0, f16: 1, bf16: 2, i32: 3 } as const;
/** A dtype code understood by the addon. */
export type NativeDTypeCode = (typeof NativeDTypeCode)[keyof typeof NativeDTypeCode];

/** `probe()`: never throws; `errorCode` is the `cudaError_t` of `cudaGetDeviceCount` (0 on success). */
export interface NativeProbeResult {
  /** CUDA runtime version the addon was linked with, e.g. 13000. */
  runtimeVersion: number;
  /** Newest CUDA version the installed driver supports (0 without a driver). */
  driverVersion: number;
  deviceCount: number;
  errorCode: number;
  /** e.g. `cudaErrorInsufficientDriver`; empty on success. */
  errorName: string;
  errorMessage: string;
}

/** `deviceProperties(device)`, from `cudaGetDeviceProperties`. */
export interface NativeDeviceProperties {
  /** Marketing name, e.g. `NVIDIA H100 80GB HBM3`. */
  name: string;
  /** `major.minor`, e.g. `9.0`. */
  computeCapability: string;
  multiprocessorCount: number;
  totalMemoryBytes: number;
  l2CacheBytes: number;
  sharedMemoryPerBlockOptin: number;
  memoryBusWidthBits: number;
}

/** Whether a run-time loaded library (cuBLAS, NCCL) was found, where, or why not. */
export interface NativeLibraryStatus {
  available: boolean;
  path: string;
  error: string;
}

/** `libraryInfo()`: cuBLAS and NCCL are opened with dlopen on first use of this call or a context. */
export interface NativeLibraryInfo {
  cublas: NativeLibraryStatus;
  /** `abortable`: the library has `ncclCommAbort`, so `ncclAbortRanks` can abort ranks. */
  nccl: NativeLibraryStatus & { version: number; abortable: boolean };
}

/** A kernel's arguments as the addon reads them: device pointers, dtype codes and numbers by name. */
export type NativeKernelArgs = Record<string, bigint | number | null>;

/** The addon's exports. */
export interface NativeAddon {
  probe(): NativeProbeResult;
  deviceProperties(device: number): NativeDeviceProperties;
  libraryInfo(): NativeLibraryInfo;

  /** Creates a stream (and a cuBLAS handle when cuBLAS loads) on `device`; returns its context id. */
  createContext(device: number): number;
  /** Waits for the stream, then frees the workspace, the cuBLAS handle and the stream. */
  destroyContext(context: number): void;
  memoryInfo(context: number): { freeBytes: number; totalBytes: number };

  /** `cudaMalloc`. */
  allocate(context: number, bytes: number): bigint;
  /** Waits for the context's stream, then `cudaFree`. */
  release(context: number, pointer: bigint): void;
  /**
   * Host-to-device copy at `byteOffset`. A `Float32Array` into an f16/bf16 buffer is rounded to
   * nearest-even on the host; any other array is copied byte for byte.
   */
  upload(
    context: number,
    pointer: bigint,
    byteOffset: number,
    data: Float32Array | Uint16Array | Int32Array,
    dtype: NativeDTypeCode,
  ): void;
  /** Resolves with `elementCount` elements (f16/bf16 widened to f32) once the stream reaches the copy. */
  download(
    context: number,
    pointer: bigint,
    byteOffset: number,
    elementCount: number,
    dtype: NativeDTypeCode,
  ): Promise<Float32Array | Int32Array>;
  /** Resolves once everything enqueued on the context's stream has completed (waits off the JS thread). */
  synchronize(context: number): Promise<void>;
  /** Blocking `cudaStreamSynchronize` (benchmarks). */
  synchronizeNow(context: number): void;
  /** Enqueues a fill of `count` elements of `dtype` with `value` (converted to the dtype). */
  fill(
    context: number,
    pointer: bigint,
    byteOffset: number,
    dtype: NativeDTypeCode,
    count: number,
    value: number,
  ): void;
  /** Enqueues a device-to-device copy of `bytes`. */
  copy(
    context: number,
    destination: bigint,
    destinationOffset: number,
    source: bigint,
    sourceOffset: number,
    bytes: number,
  ): void;
  /** Enqueues one kernel of the Backend contract by its id (`'rms-norm'`, `'ragged-decode-attention'`...). */
  run(context: number, kernel: string, args: NativeKernelArgs): void;

  /** Starts recording an event pair around every operation enqueued on the context (drops earlier records). */
  profileStart(context: number): void;
  /**
   * Stops recording, waits for the stream, and returns device time per operation name (unsorted) and
   * the first `maxCalls` operations one by one (start from the first operation's start, duration).
   */
  profileStop(
    context: number,
    maxCalls: number,
  ): {
    operations: { name: string; count: number; milliseconds: number; hostMilliseconds: number }[];
    busyMilliseconds: number;
    spanMilliseconds: number;
    calls: { name: string; startMilliseconds: number; milliseconds: number }[];
  };

  eventCreate(context: number): bigint;
  /** Records the event on the context's stream. */
  eventRecord(context: number, event: bigint): void;
  /** Waits for `end`, then returns the milliseconds between the two events. */
  eventElapsedMs(start: bigint, end: bigint): number;
  eventDestroy(event: bigint): void;
  /** Blocking `cudaEventSynchronize`. */
  eventSynchronize(event: bigint): void;

  /** `cudaHostAlloc`: page-locked host memory as an ArrayBuffer, freed with `cudaFreeHost` when collected. */
  hostAlloc(context: number, bytes: number): ArrayBuffer;
  /**
   * Upload from a typed array over `hostAlloc` memory by a kernel reading its device mapping (a graph's
   * kernel node instead of a copy node). Its byte length must be even.
   */
  uploadMapped(
    context: number,
    pointer: bigint,
    byteOffset: number,
    data: Int32Array | Float32Array | Uint16Array,
  ): void;
  /** Starts capturing the context's stream into a CUDA graph (thread-local capture mode). */
  graphCaptureBegin(context: number): void;
  /** Ends the capture and instantiates it: the executable graph's handle. */
  graphCaptureEnd(context: number): bigint;
  /** Ends a failed or abandoned capture, discarding it (clears the capture's error; never throws for it). */
  graphCaptureAbort(context: number): void;
  /** Enqueues an executable graph on the context's stream. */
  graphLaunch(context: number, graph: bigint): void;
  /** `cudaGraphExecDestroy` (work already enqueued completes). */
  graphDestroy(graph: bigint): void;

  /** `ncclGetUniqueId` (128 bytes) for a multi-process group. */
  ncclUniqueId(): Uint8Array;
  /** `ncclCommInitAll` over the devices of the given contexts (one process, all local GPUs). */
  ncclCreateGroup(contexts: number[]): number;
  /**
   * Starts `ncclCommInitRank` (this process's rank in a group of `rankCount`, on the context's device) on
   * a native thread of its own, since it blocks until every rank joined; returns the pending init's id.
   */
  ncclStartRank(uniqueId: Uint8Array, rankCount: number, rank: number, context: number): number;
  /** A pending init: undefined while NCCL waits, the group's id once it formed; throws NCCL's error. */
  ncclPollRank(pending: number): number | undefined;
  /** Stops waiting for a pending init (its thread is left to the process; a group it forms is dropped). */
  ncclAbandonRank(pending: number): void;
  /**
   * `ncclCommAbort` on every rank of this process created with `uniqueId`, on a native thread of its
   * own: their collectives waiting on the device end, later ones throw. Resolves to how many
   * communicators it aborted.
   */
  ncclAbortRanks(uniqueId: Uint8Array): Promise<number>;
  /** In-place sum all-reduce of `count` elements: buffer i on context i's stream (grouped NCCL calls). */
  ncclAllReduce(group: number, contexts: number[], pointers: bigint[], count: number, dtype: NativeDTypeCode): void;
  /**
   * Frees a group: `ncclCommDestroy`, which waits for its collectives still in flight; with `abort`, a
   * rank's communicator is `ncclCommAbort`'ed instead (what is in flight is cut, nothing is waited for).
   */
  ncclDestroyGroup(group: number, abort?: boolean): void;
}

/** The `cudaError_t` carried by an addon error, if any. */
export function cudaErrorCodeOf(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'cudaError' in error) {
    const code = (error as { cudaError: unknown }).cudaError;
    return typeof code === 'number' ? code : undefined;
  }
  return undefined;
}

/** `cudaErrorMemoryAllocation`. */
export const CUDA_ERROR_MEMORY_ALLOCATION = 2;
