import type { BufferDType, DeviceBuffer } from '../backend.js';
import { bytesPerBufferElement } from '../backend.js';

/** Host storage behind a CPU buffer: f32 values, raw f16/bf16 bits, or i32. */
export type CpuStorage = Float32Array | Uint16Array | Int32Array;

/** Allocates zeroed storage for `elementCount` elements of `dtype`, in a SharedArrayBuffer when `shared`. */
export function allocateStorage(dtype: BufferDType, elementCount: number, shared = false): CpuStorage {
  const bytes = elementCount * (dtype === 'f32' || dtype === 'i32' ? 4 : 2);
  const memory = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  if (dtype === 'f32') return new Float32Array(memory);
  if (dtype === 'i32') return new Int32Array(memory);
  return new Uint16Array(memory);
}

/** A {@link DeviceBuffer} of the CPU backend: a typed array in this process's memory. */
export class CpuBuffer<D extends BufferDType = BufferDType> implements DeviceBuffer<D> {
  readonly dtype: D;
  readonly elementCount: number;
  readonly byteLength: number;
  readonly label: string;
  /** The backend that created it (buffers never cross backends). */
  readonly owner: object;
  #storage: CpuStorage | undefined;

  constructor(owner: object, dtype: D, elementCount: number, label: string, shared = false) {
    this.owner = owner;
    this.dtype = dtype;
    this.elementCount = elementCount;
    this.byteLength = elementCount * bytesPerBufferElement(dtype);
    this.label = label;
    this.#storage = allocateStorage(dtype, elementCount, shared);
  }

  get disposed(): boolean {
    return this.#storage === undefined;
  }

  /** The typed array; only the backend and its kernels touch it. Undefined once disposed. */
  get storage(): CpuStorage | undefined {
    return this.#storage;
  }

  /** Drops the storage (the garbage collector reclaims it). */
  release(): void {
    this.#storage = undefined;
  }
}
