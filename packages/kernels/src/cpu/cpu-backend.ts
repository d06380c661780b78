import {
  BackendError,
  CapacityError,
  type DType,
  type KernelName,
  UnsupportedError,
  ValidationError,
} from '@fairkv/core';
import type {
  Backend,
  BackendCapabilities,
  BackendMemoryStats,
  BackendProfile,
  BufferDType,
  CopyOptions,
  CreateBufferOptions,
  DeviceBuffer,
  ElementRange,
  GraphStepStats,
  HostArray,
  HostArrayOf,
} from '../backend.js';
import { checkCopyOptions, checkCreateBufferOptions, checkFillValue, checkUploadData } from '../buffer-checks.js';
import { resolveElementRange } from '../buffer-range.js';
import { GraphSteps } from '../graph-steps.js';
import { decodeHalf, encodeHalf, f32ToBf16Bits, f32ToF16Bits } from '../half-precision.js';
import type { KernelArgsMap } from '../kernel-args.js';
import { OperationProfiler } from '../operation-profiler.js';
import { validateKernelArgs } from '../validate-kernel-args.js';
import { CpuBuffer } from './cpu-buffer.js';
import type { AnyCpuKernel, CpuKernel, CpuKernelContext } from './cpu-kernel.js';
import { CPU_KERNELS } from './kernels/index.js';
import type { StoredArray } from './stored-array.js';
import { CpuThreadPool } from './thread-pool.js';

/** Options of {@link createCpuBackend}. */
export interface CpuBackendOptions {
  /**
   * Bytes this backend may hold in buffers (default: unlimited). A device worker running one CPU
   * backend per simulated device sets it so that `CapacityError`s come where a real device's would.
   */
  memoryLimitBytes?: number;
  /** Kernels to register (default: every CPU kernel). Tests use it to check capability-driven skips. */
  kernels?: readonly KernelName[];
  /**
   * Threads `matmul` and `ragged-decode-attention` may use, the calling thread included (default 1:
   * off). Above 1, buffers live in SharedArrayBuffers and large calls are split over worker threads.
   * Leave it at 1 when the runtime already runs one CPU backend per device worker.
   */
  threads?: number;
}

/** Largest typed array this backend allocates (V8's limit on 64-bit Node 20 is higher). */
const MAX_BUFFER_BYTES = 2 ** 32;

const STORAGE_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

/**
 * The CPU reference backend: buffers are typed arrays, kernels run synchronously at `run` (so the
 * queue is trivially in order), storage dtypes f32, f16 and bf16 (half-precision values are
 * widened on read, rounded to nearest even on write; compute is f32 storage with f64 accumulation).
 * Its kernel list is registered in the constructor: two backends in one process share nothing.
 */
export class CpuBackend implements Backend {
  readonly name = 'cpu';
  readonly capabilities: BackendCapabilities;
  readonly #kernels: Map<KernelName, AnyCpuKernel>;
  readonly #buffers = new Set<CpuBuffer>();
  readonly #memoryLimitBytes: number;
  readonly #context: CpuKernelContext;
  readonly #scratchF32: Float32Array[] = [];
  readonly #scratchF64: Float64Array[] = [];
  readonly #pool: CpuThreadPool | undefined;
  readonly #profiler = new OperationProfiler();
  #allocatedBytes = 0;
  #peakAllocatedBytes = 0;
  #disposed = false;
  /** The graph being captured (checked operations, run at each launch), if any. */
  #capture: (() => void)[] | undefined;
  readonly #graphs = new Map<bigint, (() => void)[]>();
  #nextGraph = 1n;
  readonly #steps = new GraphSteps(
    {
      beginCapture: () => {
        this.#capture = [];
      },
      endCapture: () => {
        const handle = this.#nextGraph++;
        this.#graphs.set(handle, this.#capture ?? []);
        this.#capture = undefined;
        return handle;
      },
      abortCapture: () => {
        this.#capture = undefined;
      },
      launch: (graph) => {
        for (const operation of this.#graphs.get(graph) ?? []) operation();
      },
      waitLaunched: () => {},
      destroy: (graph) => {
        this.#graphs.delete(graph);
      },
      hostMemory: (bytes) => new ArrayBuffer(bytes),
    },
    {
      // copies of the arguments: a captured operation must not see the caller's later changes
      run: (kernel, args) => this.#enqueue(kernel, this.#run(kernel, { ...args } as KernelArgsMap[typeof kernel])),
      upload: (buffer, data, elementOffset) => this.#enqueue('upload', this.#upload(buffer, data, elementOffset)),
      fill: (buffer, value, range) => this.#enqueue('fill', this.#fill(buffer, value, range)),
      copy: (options) => this.#enqueue('copy', this.#copy({ ...options })),
    },
  );

  constructor(options: CpuBackendOptions = {}) {
    const wanted = options.kernels;
    this.#kernels = new Map(
      CPU_KERNELS.filter((kernel) => wanted === undefined || wanted.includes(kernel.name)).map((kernel) => [
        kernel.name,
        kernel,
      ]),
    );
    this.#memoryLimitBytes = options.memoryLimitBytes ?? Number.POSITIVE_INFINITY;
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) {
      throw new ValidationError(`threads: expected a positive integer, got ${threads}`, [
        { path: '$.threads', message: 'expected a positive integer' },
      ]);
    }
    this.#pool = threads > 1 ? new CpuThreadPool(threads) : undefined;
    this.capabilities = {
      name: 'cpu',
      kernels: [...this.#kernels.keys()],
      storageDTypes: STORAGE_DTYPES,
      maxBufferBytes: MAX_BUFFER_BYTES,
      headDims: 'any',
      graphSteps: true,
    };
    this.#context = {
      f32: (buffer) => this.#storageOf(buffer) as Float32Array,
      i32: (buffer) => this.#storageOf(buffer) as Int32Array,
      stored: (buffer) => ({ dtype: buffer.dtype, data: this.#storageOf(buffer) }) as StoredArray,
      scratchF32: (slot, length) => this.#scratch(this.#scratchF32, Float32Array, slot, length),
      scratchF64: (slot, length) => this.#scratch(this.#scratchF64, Float64Array, slot, length),
      ...(this.#pool === undefined ? {} : { parallel: this.#pool }),
    };
  }

  createBuffer<D extends BufferDType>(options: CreateBufferOptions<D>): DeviceBuffer<D> {
    this.#assertLive();
    const { dtype, elementCount, label, byteLength } = checkCreateBufferOptions(options);
    if (byteLength > MAX_BUFFER_BYTES) {
      throw new CapacityError(`buffer '${label}' of ${byteLength} bytes exceeds maxBufferBytes ${MAX_BUFFER_BYTES}`, {
        shortfallBytes: byteLength - MAX_BUFFER_BYTES,
      });
    }
    if (this.#allocatedBytes + byteLength > this.#memoryLimitBytes) {
      const shortfallBytes = this.#allocatedBytes + byteLength - this.#memoryLimitBytes;
      throw new CapacityError(
        `buffer '${label}' of ${byteLength} bytes does not fit: ${this.#allocatedBytes} of ${this.#memoryLimitBytes} bytes in use`,
        { shortfallBytes },
      );
    }
    const buffer = new CpuBuffer(this, dtype, elementCount, label, this.#pool !== undefined);
    this.#buffers.add(buffer);
    this.#allocatedBytes += byteLength;
    this.#peakAllocatedBytes = Math.max(this.#peakAllocatedBytes, this.#allocatedBytes);
    return buffer;
  }

  upload(buffer: DeviceBuffer, data: HostArray, elementOffset = 0): void {
    if (this.#steps.open) this.#steps.upload(buffer, data, elementOffset);
    else this.#enqueue('upload', this.#upload(buffer, data, elementOffset));
  }

  /** Checks an upload now; the write it returns reads `data` when it runs (in a graph: at each launch). */
  #upload(buffer: DeviceBuffer, data: HostArray, elementOffset: number): () => void {
    const storage = this.#storageOf(buffer);
    if (checkUploadData(buffer, data, elementOffset) === 'encode') {
      return () =>
        encodeHalf(buffer.dtype as 'f16' | 'bf16', data as Float32Array, storage as Uint16Array, elementOffset);
    }
    return () => storage.set(data as never, elementOffset);
  }

  download<D extends BufferDType>(buffer: DeviceBuffer<D>, range: ElementRange = {}): Promise<HostArrayOf<D>> {
    try {
      if (this.#steps.open) this.#steps.interrupt();
      return Promise.resolve(this.#profiler.time('download', () => this.#download(buffer, range)));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #download<D extends BufferDType>(buffer: DeviceBuffer<D>, range: ElementRange): HostArrayOf<D> {
    const storage = this.#storageOf(buffer);
    const { offset, count } = resolveElementRange(buffer, 'download', range);
    if (buffer.dtype === 'f16' || buffer.dtype === 'bf16') {
      const widened = new Float32Array(count);
      decodeHalf(buffer.dtype, storage as Uint16Array, offset, widened, 0, count);
      return widened as HostArrayOf<D>;
    }
    return storage.slice(offset, offset + count) as HostArrayOf<D>;
  }

  fill(buffer: DeviceBuffer, value: number, range: ElementRange = {}): void {
    if (this.#steps.open) this.#steps.fill(buffer, value, range);
    else this.#enqueue('fill', this.#fill(buffer, value, range));
  }

  #fill(buffer: DeviceBuffer, value: number, range: ElementRange): () => void {
    const storage = this.#storageOf(buffer);
    const { offset, count } = resolveElementRange(buffer, 'fill', range);
    checkFillValue(buffer, value);
    let stored = value;
    if (buffer.dtype === 'f16') stored = f32ToF16Bits(value);
    else if (buffer.dtype === 'bf16') stored = f32ToBf16Bits(value);
    return () => storage.fill(stored, offset, offset + count);
  }

  copy(options: CopyOptions): void {
    if (this.#steps.open) this.#steps.copy(options);
    else this.#enqueue('copy', this.#copy(options));
  }

  #copy(options: CopyOptions): () => void {
    const { source, destination, sourceOffset, destinationOffset, elementCount } = options;
    const from = this.#storageOf(source);
    const to = this.#storageOf(destination);
    checkCopyOptions(options);
    return () => to.set(from.subarray(sourceOffset, sourceOffset + elementCount), destinationOffset);
  }

  disposeBuffer(buffer: DeviceBuffer): void {
    this.#assertLive();
    const own = this.#own(buffer);
    if (own.disposed) return;
    if (this.#steps.open) this.#steps.interrupt();
    this.#steps.forget(own);
    own.release();
    this.#buffers.delete(own);
    this.#allocatedBytes -= own.byteLength;
  }

  run<K extends KernelName>(kernel: K, args: KernelArgsMap[K]): void {
    if (this.#steps.open) this.#steps.run(kernel, args);
    else this.#enqueue(kernel, this.#run(kernel, args));
  }

  #run<K extends KernelName>(kernel: K, args: KernelArgsMap[K]): () => void {
    this.#assertLive();
    validateKernelArgs(kernel, args, this.capabilities);
    for (const value of Object.values(args)) {
      if (typeof value === 'object' && value !== null && 'dtype' in value) this.#own(value as DeviceBuffer);
    }
    const implementation = this.#kernels.get(kernel) as unknown as CpuKernel<K> | undefined;
    if (implementation === undefined) throw new UnsupportedError(`kernel '${kernel}' is not registered`);
    return () => implementation.run(args, this.#context);
  }

  /**
   * Runs a checked operation now (timed when profiling), or, while a graph step is being captured,
   * appends it to the graph.
   */
  #enqueue(name: string, operation: () => void): void {
    if (this.#capture) this.#capture.push(operation);
    else this.#profiler.time(name, operation);
  }

  /**
   * Opens a graph step (see the Backend contract). On the CPU a graph is the list of the step's checked
   * operations: a replay skips the argument checks and runs them in order.
   */
  beginGraphStep(name: string): void {
    this.#assertLive();
    this.#steps.begin(name, this.#profiler.active);
  }

  endGraphStep(): void {
    this.#assertLive();
    this.#steps.end();
  }

  graphStats(): GraphStepStats {
    return this.#steps.stats();
  }

  /** Times every operation from now on (host wall time: CPU operations complete when called). */
  startProfile(): void {
    this.#assertLive();
    if (this.#steps.open) this.#steps.interrupt();
    this.#profiler.start();
  }

  stopProfile(): Promise<BackendProfile> {
    return this.#disposed
      ? Promise.reject(new BackendError('the cpu backend is disposed'))
      : Promise.resolve(this.#profiler.stop());
  }

  synchronize(): Promise<void> {
    if (this.#steps.open) this.#steps.interrupt();
    return this.#disposed ? Promise.reject(new BackendError('the cpu backend is disposed')) : Promise.resolve();
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
    this.#steps.dispose();
    for (const buffer of this.#buffers) buffer.release();
    this.#buffers.clear();
    this.#allocatedBytes = 0;
    this.#scratchF32.length = 0;
    this.#scratchF64.length = 0;
    this.#pool?.terminate();
    this.#disposed = true;
  }

  #assertLive(): void {
    if (this.#disposed) throw new BackendError('the cpu backend is disposed');
  }

  #own(buffer: DeviceBuffer): CpuBuffer {
    if (!(buffer instanceof CpuBuffer) || buffer.owner !== this) {
      throw new BackendError(`buffer '${buffer.label}' was not created by this cpu backend`);
    }
    return buffer;
  }

  #storageOf(buffer: DeviceBuffer) {
    this.#assertLive();
    const storage = this.#own(buffer).storage;
    if (storage === undefined) throw new BackendError(`buffer '${buffer.label}' is disposed`);
    return storage;
  }

  #scratch<T extends Float32Array | Float64Array>(
    pool: T[],
    create: new (length: number) => T,
    slot: number,
    length: number,
  ): T {
    const existing = pool[slot];
    if (existing !== undefined && existing.length >= length) return existing;
    const created = new create(Math.max(length, 64));
    pool[slot] = created;
    return created;
  }
}

/** Creates the CPU reference backend. */
export function createCpuBackend(options: CpuBackendOptions = {}): CpuBackend {
  return new CpuBackend(options);
}
