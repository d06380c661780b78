/**
 * The CUDA backend: the fairkv Backend contract (`@fairkv/kernels`) on one NVIDIA GPU through the
 * N-API addon. One CUDA stream per backend is its queue: every operation is enqueued in call order;
 * `download` and `synchronize` wait for the stream off the JavaScript thread.
 *
 * @packageDocumentation
 */
import { BackendError, CapacityError, type DType, KERNEL_NAMES, type KernelName, ValidationError } from '@fairkv/core';
import {
  type Backend,
  type BackendCapabilities,
  type BackendMemoryStats,
  type BackendProfile,
  type BufferDType,
  type CopyOptions,
  type CreateBufferOptions,
  checkCopyOptions,
  checkCreateBufferOptions,
  checkFillValue,
  checkUploadData,
  type DeviceBuffer,
  type ElementRange,
  encodeHalf,
  GRAPH_SEGMENT_OPERATIONS,
  type GraphDevice,
  type GraphStepStats,
  GraphSteps,
  type HostArray,
  type HostArrayOf,
  type KernelArgsMap,
  MAX_PROFILE_CALLS,
  resolveElementRange,
  sortedProfile,
  validateKernelArgs,
} from '@fairkv/kernels';
import { CudaBuffer } from './cuda-buffer.js';
import { loadNativeAddon } from './load-native.js';
import {
  CUDA_ERROR_MEMORY_ALLOCATION,
  cudaErrorCodeOf,
  type NativeAddon,
  type NativeDeviceProperties,
  NativeDTypeCode,
} from './native.js';
import { toNativeKernelArgs } from './native-kernel-args.js';

/** Options of {@link createCudaBackend}. */
export interface CudaBackendOptions {
  /** CUDA device index (default 0). */
  device?: number;
}

/** Dtypes the CUDA kernels store weights and the KV pool in. */
export const CUDA_STORAGE_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

/**
 * Head dims the attention and KV kernels accept: every even dim up to 256 (the decode kernel keeps
 * a head's row across at most 32 lanes of 8 f32 values).
 */
export const CUDA_HEAD_DIMS: readonly number[] = Array.from({ length: 128 }, (_, i) => 2 * (i + 1));

/** The CUDA backend of one device. Create it with {@link createCudaBackend}. */
export class CudaBackend implements Backend {
  readonly name = 'cuda';
  readonly capabilities: BackendCapabilities;
  /** The device this backend runs on. */
  readonly device: number;
  /** `cudaGetDeviceProperties` of that device. */
  readonly deviceProperties: NativeDeviceProperties;
  readonly #addon: NativeAddon;
  readonly #context: number;
  readonly #buffers = new Set<CudaBuffer>();
  #allocatedBytes = 0;
  #peakAllocatedBytes = 0;
  #disposed = false;
  #profiling = false;
  readonly #steps: GraphSteps;
  /** Completion event of each graph's last launch. */
  readonly #graphEvents = new Map<bigint, bigint>();
  /** FAIRKV_CUDA_GRAPHS=0: graph steps always run one operation at a time. */
  readonly #graphsEnabled = process.env.FAIRKV_CUDA_GRAPHS !== '0';
  /**
   * Captured uploads as a kernel reading the slot through its mapping: a copy node would take the copy
   * engine between kernels (FAIRKV_CUDA_GRAPH_UPLOAD=memcpy, benchmarks: copy nodes).
   */
  readonly #mappedUploads = process.env.FAIRKV_CUDA_GRAPH_UPLOAD !== 'memcpy';

  /** @internal Use {@link createCudaBackend}. */
  constructor(addon: NativeAddon, device: number, deviceProperties: NativeDeviceProperties) {
    this.#addon = addon;
    this.device = device;
    this.deviceProperties = deviceProperties;
    this.#context = addon.createContext(device);
    this.capabilities = {
      name: 'cuda',
      kernels: [...KERNEL_NAMES],
      storageDTypes: CUDA_STORAGE_DTYPES,
      maxBufferBytes: deviceProperties.totalMemoryBytes,
      headDims: CUDA_HEAD_DIMS,
      graphSteps: true,
    };
    this.#steps = new GraphSteps(
      this.#graphDevice(),
      {
        run: (kernel, args) => this.#run(kernel, args as KernelArgsMap[typeof kernel]),
        upload: (buffer, data, elementOffset) => this.#upload(buffer, data, elementOffset),
        fill: (buffer, value, range) => this.#fill(buffer, value, range),
        copy: (options) => this.#copy(options),
      },
      { segmentOperations: graphSegmentOperations() },
    );
  }

  /** The addon context id (stream + cuBLAS handle) of this backend; for the NCCL communicator. */
  get nativeContext(): number {
    this.#assertLive();
    return this.#context;
  }

  /** The loaded addon; for benchmarks and the NCCL communicator. */
  get native(): NativeAddon {
    return this.#addon;
  }

  createBuffer<D extends BufferDType>(options: CreateBufferOptions<D>): DeviceBuffer<D> {
    this.#assertLive();
    if (this.#steps.open) this.#steps.interrupt(true);
    const { dtype, elementCount, label, byteLength } = checkCreateBufferOptions(options);
    let pointer: bigint;
    try {
      pointer = this.#addon.allocate(this.#context, byteLength);
    } catch (error) {
      if (cudaErrorCodeOf(error) === CUDA_ERROR_MEMORY_ALLOCATION) {
        const free = this.#addon.memoryInfo(this.#context).freeBytes;
        throw new CapacityError(
          `buffer '${label}' of ${byteLength} bytes does not fit on CUDA device ${this.device}: ${free} bytes free`,
          { device: this.device, shortfallBytes: Math.max(1, byteLength - free) },
        );
      }
      throw this.#backendError(`allocating buffer '${label}'`, error);
    }
    const buffer = new CudaBuffer(this, dtype, elementCount, label, pointer);
    this.#buffers.add(buffer);
    this.#allocatedBytes += byteLength;
    this.#peakAllocatedBytes = Math.max(this.#peakAllocatedBytes, this.#allocatedBytes);
    return buffer;
  }

  upload(buffer: DeviceBuffer, data: HostArray, elementOffset = 0): void {
    if (this.#steps.open) this.#steps.upload(buffer, data, elementOffset);
    else this.#upload(buffer, data, elementOffset);
  }

  /** `mapped`: `data` lies in `hostAlloc` memory, read by a kernel through its device mapping. */
  #upload(buffer: DeviceBuffer, data: HostArray, elementOffset: number, mapped = false): void {
    const pointer = this.#pointerOf(buffer);
    let bytes: HostArray = data;
    if (checkUploadData(buffer, data, elementOffset) === 'encode') {
      // Round exactly as the contract's reference does (round-to-nearest-even, NaN kept).
      const encoded = new Uint16Array(data.length);
      encodeHalf(buffer.dtype as 'f16' | 'bf16', data as Float32Array, encoded, 0);
      bytes = encoded;
    }
    if (bytes.length === 0) return;
    const elementBytes = buffer.byteLength / buffer.elementCount;
    this.#call('upload', () =>
      mapped
        ? this.#addon.uploadMapped(this.#context, pointer, elementOffset * elementBytes, bytes)
        : this.#addon.upload(
            this.#context,
            pointer,
            elementOffset * elementBytes,
            bytes,
            NativeDTypeCode[buffer.dtype],
          ),
    );
  }

  download<D extends BufferDType>(buffer: DeviceBuffer<D>, range: ElementRange = {}): Promise<HostArrayOf<D>> {
    try {
      if (this.#steps.open) this.#steps.interrupt();
      const pointer = this.#pointerOf(buffer);
      const { offset, count } = resolveElementRange(buffer, 'download', range);
      if (count === 0) {
        return Promise.resolve((buffer.dtype === 'i32' ? new Int32Array(0) : new Float32Array(0)) as HostArrayOf<D>);
      }
      const elementBytes = buffer.byteLength / buffer.elementCount;
      return this.#addon
        .download(this.#context, pointer, offset * elementBytes, count, NativeDTypeCode[buffer.dtype])
        .then(
          (result) => result as HostArrayOf<D>,
          (error: unknown) => {
            throw this.#backendError(`downloading buffer '${buffer.label}'`, error);
          },
        );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  fill(buffer: DeviceBuffer, value: number, range: ElementRange = {}): void {
    if (this.#steps.open) this.#steps.fill(buffer, value, range);
    else this.#fill(buffer, value, range);
  }

  #fill(buffer: DeviceBuffer, value: number, range: ElementRange): void {
    const pointer = this.#pointerOf(buffer);
    const { offset, count } = resolveElementRange(buffer, 'fill', range);
    checkFillValue(buffer, value);
    if (count === 0) return;
    const elementBytes = buffer.byteLength / buffer.elementCount;
    this.#call('fill', () =>
      this.#addon.fill(this.#context, pointer, offset * elementBytes, NativeDTypeCode[buffer.dtype], count, value),
    );
  }

  copy(options: CopyOptions): void {
    if (this.#steps.open) this.#steps.copy(options);
    else this.#copy(options);
  }

  #copy(options: CopyOptions): void {
    const { source, destination, sourceOffset, destinationOffset, elementCount } = options;
    const from = this.#pointerOf(source);
    const to = this.#pointerOf(destination);
    checkCopyOptions(options);
    const elementBytes = source.byteLength / source.elementCount;
    this.#call('copy', () =>
      this.#addon.copy(
        this.#context,
        to,
        destinationOffset * elementBytes,
        from,
        sourceOffset * elementBytes,
        elementCount * elementBytes,
      ),
    );
  }

  disposeBuffer(buffer: DeviceBuffer): void {
    this.#assertLive();
    const own = this.#own(buffer);
    const pointer = own.pointer;
    if (pointer === undefined) return;
    if (this.#steps.open) this.#steps.interrupt();
    this.#steps.forget(own);
    own.release();
    this.#buffers.delete(own);
    this.#allocatedBytes -= own.byteLength;
    this.#call('disposeBuffer', () => this.#addon.release(this.#context, pointer));
  }

  run<K extends KernelName>(kernel: K, args: KernelArgsMap[K]): void {
    if (this.#steps.open) this.#steps.run(kernel, args);
    else this.#run(kernel, args);
  }

  #run<K extends KernelName>(kernel: K, args: KernelArgsMap[K]): void {
    this.#assertLive();
    validateKernelArgs(kernel, args, this.capabilities);
    const native = toNativeKernelArgs(args, (buffer) => this.#pointerOf(buffer));
    this.#call(kernel, () => this.#addon.run(this.#context, kernel, native));
  }

  synchronize(): Promise<void> {
    if (this.#disposed) return Promise.reject(new BackendError('the cuda backend is disposed'));
    if (this.#steps.open) this.#steps.interrupt();
    return this.#addon.synchronize(this.#context).catch((error: unknown) => {
      throw this.#backendError('synchronize', error);
    });
  }

  /**
   * Starts timing every operation enqueued from now on with CUDA events (all-reduces on this
   * device's stream included). Costs two event records per operation while on, and keeps those events
   * until {@link stopProfile}: profile windows, not whole runs. The profile also lists the window's
   * first `MAX_PROFILE_CALLS` operations one by one (`calls`).
   */
  startProfile(): void {
    this.#assertLive();
    if (this.#steps.open) this.#steps.interrupt();
    this.#call('startProfile', () => this.#addon.profileStart(this.#context));
    this.#profiling = true;
  }

  async stopProfile(): Promise<BackendProfile> {
    await this.synchronize();
    this.#assertLive();
    this.#profiling = false;
    return sortedProfile(this.#call('stopProfile', () => this.#addon.profileStop(this.#context, MAX_PROFILE_CALLS)));
  }

  /**
   * Opens a graph step (see the Backend contract): its first run is eager, the second is captured into
   * a CUDA graph, later ones replay that graph when they issue the same operations. Steps run
   * eagerly while profiling and with `FAIRKV_CUDA_GRAPHS=0`.
   */
  beginGraphStep(name: string): void {
    this.#assertLive();
    this.#call('beginGraphStep', () => this.#steps.begin(name, this.#profiling || !this.#graphsEnabled));
  }

  endGraphStep(): void {
    this.#assertLive();
    this.#call('endGraphStep', () => this.#steps.end());
  }

  graphStats(): GraphStepStats {
    return this.#steps.stats();
  }

  /**
   * Destroys every recorded graph, each once its last launch has completed (before the NCCL
   * communicator whose all-reduces they captured is destroyed); graph steps record again when next used.
   */
  dropGraphs(): void {
    if (this.#disposed) return;
    this.#call('dropGraphs', () => this.#steps.dispose());
  }

  /**
   * Enqueues work onto this backend's stream that is not one of its operations (the NCCL rank's
   * all-reduce): inside a graph step it is recorded and replayed with the step (`key`, `buffers` and
   * `numbers` are all it may depend on); otherwise `enqueue` runs now.
   */
  enqueueExternal(key: string, buffers: DeviceBuffer[], numbers: number[], enqueue: () => void): void {
    this.#assertLive();
    if (this.#steps.open) this.#steps.external(key, buffers, numbers, enqueue);
    else enqueue();
  }

  memory(): BackendMemoryStats {
    return {
      allocatedBytes: this.#allocatedBytes,
      peakAllocatedBytes: this.#peakAllocatedBytes,
      bufferCount: this.#buffers.size,
    };
  }

  dispose(): void {
    if (this.#disposed) return;
    try {
      this.#steps.dispose();
    } catch {
      // The device may be in an error state; the context teardown below frees what it can.
    }
    this.#disposed = true;
    for (const buffer of this.#buffers) {
      const pointer = buffer.pointer;
      buffer.release();
      if (pointer !== undefined) {
        try {
          this.#addon.release(this.#context, pointer);
        } catch {
          // The device may be in an error state; the context teardown below frees what it can.
        }
      }
    }
    this.#buffers.clear();
    this.#allocatedBytes = 0;
    this.#addon.destroyContext(this.#context);
  }

  /** The addon's graph calls on this backend's context, with a completion event per graph. */
  #graphDevice(): GraphDevice {
    const addon = this.#addon;
    const context = this.#context;
    return {
      beginCapture: () => addon.graphCaptureBegin(context),
      endCapture: () => addon.graphCaptureEnd(context),
      abortCapture: () => addon.graphCaptureAbort(context),
      launch: (graph) => {
        addon.graphLaunch(context, graph);
        let event = this.#graphEvents.get(graph);
        if (event === undefined) {
          event = addon.eventCreate(context);
          this.#graphEvents.set(graph, event);
        }
        addon.eventRecord(context, event);
      },
      waitLaunched: (graph) => {
        const event = this.#graphEvents.get(graph);
        if (event !== undefined) addon.eventSynchronize(event);
      },
      destroy: (graph) => {
        const event = this.#graphEvents.get(graph);
        this.#graphEvents.delete(graph);
        // a launch still running may read its upload slots, which go once the graph is dropped
        if (event !== undefined) addon.eventSynchronize(event);
        addon.graphDestroy(graph);
        if (event !== undefined) addon.eventDestroy(event);
      },
      hostMemory: (bytes) => addon.hostAlloc(context, bytes),
      uploadSlot: (buffer, slot, elementOffset) => this.#upload(buffer, slot, elementOffset, this.#mappedUploads),
    };
  }

  #call<T>(operation: string, body: () => T): T {
    try {
      return body();
    } catch (error) {
      throw this.#backendError(operation, error);
    }
  }

  #backendError(operation: string, error: unknown): Error {
    if (error instanceof ValidationError || error instanceof BackendError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new BackendError(`cuda device ${this.device}: ${operation} failed: ${message}`, { cause: error });
  }

  #assertLive(): void {
    if (this.#disposed) throw new BackendError('the cuda backend is disposed');
  }

  #own(buffer: DeviceBuffer): CudaBuffer {
    if (!(buffer instanceof CudaBuffer) || buffer.owner !== this) {
      throw new BackendError(`buffer '${buffer.label}' was not created by this cuda backend`);
    }
    return buffer;
  }

  #pointerOf(buffer: DeviceBuffer): bigint {
    this.#assertLive();
    const pointer = this.#own(buffer).pointer;
    if (pointer === undefined) throw new BackendError(`buffer '${buffer.label}' is disposed`);
    return pointer;
  }
}

/** Operations per graph segment: FAIRKV_CUDA_GRAPH_SEGMENT (benchmarks), else the default. */
function graphSegmentOperations(): number {
  const text = process.env.FAIRKV_CUDA_GRAPH_SEGMENT;
  if (text === undefined) return GRAPH_SEGMENT_OPERATIONS;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new ValidationError(`FAIRKV_CUDA_GRAPH_SEGMENT: expected a positive integer, got ${JSON.stringify(text)}`, [
      { path: '$env.FAIRKV_CUDA_GRAPH_SEGMENT', message: 'expected a positive integer' },
    ]);
  }
  return value;
}

/**
 * Creates the CUDA backend on `options.device` (default 0). The addon is first probe-loaded in a
 * child process; when it is missing, no driver or GPU is present, or the device index is out of
 * range, this throws `BackendError("CUDA backend unavailable: <reason>")` and the host process is
 * unharmed.
 */
export function createCudaBackend(options: CudaBackendOptions = {}): CudaBackend {
  const device = options.device ?? 0;
  const { addon, probe } = loadNativeAddon();
  const properties = probe.devices[device];
  if (!Number.isInteger(device) || properties === undefined) {
    throw new BackendError(
      `CUDA backend unavailable: device ${device} does not exist (${probe.devices.length} device(s) found)`,
    );
  }
  try {
    return new CudaBackend(addon, device, properties);
  } catch (error) {
    throw new BackendError(`CUDA backend unavailable: ${(error as Error).message}`, { cause: error });
  }
}
