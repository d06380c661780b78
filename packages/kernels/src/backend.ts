/**
 * The Backend contract: what a fairkv compute backend (CPU, CUDA, WebGPU) provides to the runtime.
 *
 * Model
 * - A backend owns its device memory. The runtime creates {@link DeviceBuffer}s through it, fills
 *   them with {@link Backend.upload}, reads them with {@link Backend.download} and releases them
 *   with {@link Backend.disposeBuffer}; {@link Backend.dispose} releases everything.
 * - Every operation is **enqueued synchronously, in call order**, on one queue (a CUDA stream, a
 *   WebGPU queue, or immediate execution on the CPU). Only {@link Backend.download} and
 *   {@link Backend.synchronize} are asynchronous; they resolve once everything enqueued before them
 *   has completed. `upload` copies the caller's array at call time, so it may be reused at once.
 * - Kernels take explicit shapes (no hidden globals) and are run with {@link Backend.run}, typed by
 *   {@link KernelArgsMap}. Argument errors (a wrong dtype, a buffer too small, a shape that does not
 *   fit) are thrown synchronously as `ValidationError` naming the field, the value and what was
 *   expected (`validateKernelArgs` of this package does it for every backend). The *contents* of index
 *   buffers (token ids, block ids, kept indices) are not validated on GPUs: invalid contents give
 *   unspecified output there; the CPU backend throws a `BackendError`.
 * - Activations are always f32. Weights, norm weights, the embedding table and the paged KV pool may
 *   be stored in any dtype the backend declares in {@link BackendCapabilities.storageDTypes}; kernels
 *   read them, convert to f32 and compute in (at least) f32. Token ids, positions, block tables and
 *   other indices are `i32` buffers.
 * - A buffer may be larger than a kernel's shape needs: kernels read and write only the leading
 *   elements the shape implies and leave the rest untouched.
 *
 * The KV cache layout the attention and KV kernels share is documented in `docs/kv-cache.md` and in
 * `kv-layout.ts`.
 *
 * @packageDocumentation
 */
import type { DType, KernelName } from '@fairkv/core';
import type { BufferDType, DeviceBuffer } from './device-buffer.js';
import type { KernelArgsMap } from './kernel-args.js';

export type { BufferDType, DeviceBuffer } from './device-buffer.js';

/** Host array a {@link Backend.download} of a buffer of dtype `D` resolves to. */
export type HostArrayOf<D extends BufferDType> = D extends 'i32' ? Int32Array : Float32Array;

/**
 * Host data {@link Backend.upload} accepts: `Float32Array` for float buffers (converted to the
 * buffer's dtype with round-to-nearest-even), `Uint16Array` of raw IEEE half / bfloat16 bit patterns
 * for f16 and bf16 buffers (copied as is: how GGUF and safetensors store them), `Int32Array` for i32.
 */
export type HostArray = Float32Array | Uint16Array | Int32Array;

/** Options of {@link Backend.createBuffer}. */
export interface CreateBufferOptions<D extends BufferDType = BufferDType> {
  dtype: D;
  /** Number of elements (a positive integer; zero-sized buffers are not allowed). */
  elementCount: number;
  /** Name used in error messages and memory reports. */
  label?: string;
}

/** An element range of a buffer; defaults to the whole buffer. */
export interface ElementRange {
  /** First element (default 0). */
  elementOffset?: number;
  /** Number of elements (default: to the end of the buffer). */
  elementCount?: number;
}

/** Arguments of {@link Backend.copy}: a device-to-device copy between buffers of one dtype. */
export interface CopyOptions {
  source: DeviceBuffer;
  sourceOffset: number;
  destination: DeviceBuffer;
  destinationOffset: number;
  elementCount: number;
}

/** What a backend declares it can do. The conformance suite skips only what this leaves out. */
export interface BackendCapabilities {
  /** Backend id: `'cpu'`, `'cuda'`, `'webgpu'`. */
  name: string;
  /** Kernels {@link Backend.run} accepts. */
  kernels: readonly KernelName[];
  /**
   * Dtypes accepted for stored tensors: matmul weights, norm weights, the embedding table and the
   * paged KV pool. Always contains `'f32'`.
   */
  storageDTypes: readonly DType[];
  /** Largest single buffer, in bytes. */
  maxBufferBytes: number;
  /** Head dims the attention and KV kernels accept (every positive even dim when `'any'`). */
  headDims: readonly number[] | 'any';
  /** Whether it has graph steps ({@link Backend.beginGraphStep}, {@link Backend.graphStats}). */
  graphSteps?: boolean;
}

/** Exact memory a backend holds in live buffers (the runtime's per-device accounting reads it). */
export interface BackendMemoryStats {
  /** Sum of `byteLength` over live buffers. */
  allocatedBytes: number;
  /** Highest `allocatedBytes` seen since creation. */
  peakAllocatedBytes: number;
  /** Number of live buffers. */
  bufferCount: number;
}

/**
 * A compute backend: buffers, a queue, and the kernels of the Llama decoder step.
 * See the package documentation above for the execution model.
 */
export interface Backend {
  /** Same as `capabilities.name`. */
  readonly name: string;
  /** What this backend supports; constant for its lifetime. */
  readonly capabilities: BackendCapabilities;

  /** Allocates an uninitialised buffer. Throws `CapacityError` when the device memory is exhausted. */
  createBuffer<D extends BufferDType>(options: CreateBufferOptions<D>): DeviceBuffer<D>;
  /**
   * Enqueues a host-to-device write of `data` at `elementOffset` (default 0). `data.length` elements
   * are written; see {@link HostArray} for the accepted array per dtype.
   */
  upload(buffer: DeviceBuffer, data: HostArray, elementOffset?: number): void;
  /**
   * Reads a buffer (or a range of it) back once every earlier operation has completed. f16/bf16
   * buffers come back widened to f32.
   */
  download<D extends BufferDType>(buffer: DeviceBuffer<D>, range?: ElementRange): Promise<HostArrayOf<D>>;
  /** Enqueues a fill of a range with one value (`NaN` allowed; converted to the buffer's dtype). */
  fill(buffer: DeviceBuffer, value: number, range?: ElementRange): void;
  /** Enqueues a device-to-device copy; both buffers must have the same dtype. */
  copy(options: CopyOptions): void;
  /** Releases one buffer's memory. Idempotent. */
  disposeBuffer(buffer: DeviceBuffer): void;

  /** Enqueues one kernel. Throws `UnsupportedError` for a kernel not in `capabilities.kernels`. */
  run<K extends KernelName>(kernel: K, args: KernelArgsMap[K]): void;

  /** Resolves once everything enqueued so far has completed. */
  synchronize(): Promise<void>;
  /** Exact bytes held in live buffers. */
  memory(): BackendMemoryStats;
  /**
   * Optional: starts timing every operation enqueued from now on (kernels, uploads, downloads,
   * fills, copies, and collectives that run on this backend's queue). Restarting discards what was
   * timed so far. Backends without it cannot be profiled (`fairkv bench --profile` says so).
   */
  startProfile?(): void;
  /**
   * Optional: stops timing and resolves, once every profiled operation has completed, with the
   * device time per operation since {@link Backend.startProfile}.
   */
  stopProfile?(): Promise<BackendProfile>;
  /**
   * Optional: opens a *graph step* named `name`, closed by {@link Backend.endGraphStep}. A caller that
   * issues the same operations step after step (a decode step: the same kernels on the same buffers
   * with the same numbers, uploads of the same lengths to the same places; only uploaded data differ)
   * lets the backend record them once and launch them as one device graph from then on (the CUDA
   * backend: a CUDA graph), saving the host's time per operation. Results are exactly those of the
   * operations run one by one: the first operation that differs from the recorded step, a download or
   * synchronize inside the step, or disposing a buffer the graph uses makes the backend run the step
   * eagerly and record it again later. Collectives issued outside the backend (NCCL) must not happen
   * inside a step. Steps do not nest; `beginGraphStep` while one is open throws a `BackendError`.
   */
  beginGraphStep?(name: string): void;
  /** Closes the open graph step (launching its graph where one was recorded and matched). */
  endGraphStep?(): void;
  /** Optional: what graph steps did so far (backends with {@link Backend.beginGraphStep}). */
  graphStats?(): GraphStepStats;
  /** Releases every buffer and the device; idempotent. Any later call throws a `BackendError`. */
  dispose(): void;
}

/** Counters of a backend's graph steps ({@link Backend.graphStats}). */
export interface GraphStepStats {
  /** Steps recorded into a graph (each launched once at its end). */
  captures: number;
  /** Steps that launched a recorded graph. */
  replays: number;
  /** Replays that met a different operation (or a download, a disposed buffer) and ran eagerly. */
  fallbacks: number;
  /** Captures abandoned (an operation that could not be captured); those steps ran eagerly. */
  failedCaptures: number;
  /** Graphs held now. */
  graphs: number;
}

/** Device time of one kind of operation over a profile window. */
export interface OperationTime {
  /** A kernel id (`'matmul'`...), `'upload'`, `'download'`, `'fill'`, `'copy'` or `'all-reduce'`. */
  name: string;
  /** Operations of this kind timed. */
  count: number;
  /** Their summed device time. */
  milliseconds: number;
  /**
   * Host time spent enqueuing them, where the backend measures it (the CUDA backend: inside its addon,
   * launch or library call included; absent where operations run when called, as on the CPU).
   */
  hostMilliseconds?: number;
}

/** What {@link Backend.stopProfile} resolves with. */
export interface BackendProfile {
  /** One entry per operation name, longest total first. */
  operations: OperationTime[];
  /** Sum of the operations' times. */
  busyMilliseconds: number;
  /**
   * From the start of the first profiled operation to the end of the last. The difference to
   * `busyMilliseconds` is time the device sat idle between operations (waiting for the host).
   */
  spanMilliseconds: number;
  /**
   * Where the backend times each operation on the device (the CUDA backend): the first
   * {@link MAX_PROFILE_CALLS} operations of the window one by one, in enqueue order. Shows what
   * totals hide, e.g. how one layer's attention or all-reduce differs from the next, or across devices.
   */
  calls?: OperationCall[];
}

/** Most operations a profile lists one by one in {@link BackendProfile.calls} (its totals count all). */
export const MAX_PROFILE_CALLS = 20_000;

/** One timed operation of a profile window. */
export interface OperationCall {
  /** As {@link OperationTime.name}. */
  name: string;
  /** Device time from the start of the window's first operation to this one's start. */
  startMilliseconds: number;
  /** Its device time. */
  milliseconds: number;
}

/** Creates a backend; what `describeBackendConformance` and the runtime's backend resolution call. */
export type BackendFactory = () => Backend | Promise<Backend>;

/** Bytes of one element of a buffer dtype. */
export function bytesPerBufferElement(dtype: BufferDType): number {
  return dtype === 'f32' || dtype === 'i32' ? 4 : 2;
}
