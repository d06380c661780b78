/**
 * A {@link DeviceBuffer} of the CUDA backend: `cudaMalloc`ed memory on one device, addressed by a
 * device pointer the backend passes to the addon.
 *
 * @packageDocumentation
 */
import type { BufferDType, DeviceBuffer } from '@fairkv/kernels';
import { bytesPerBufferElement } from '@fairkv/kernels';

/** A buffer in GPU memory; only the backend that created it may use it. */
export class CudaBuffer<D extends BufferDType = BufferDType> implements DeviceBuffer<D> {
  readonly dtype: D;
  readonly elementCount: number;
  readonly byteLength: number;
  readonly label: string;
  /** The backend that created it (buffers never cross backends). */
  readonly owner: object;
  #pointer: bigint | undefined;

  constructor(owner: object, dtype: D, elementCount: number, label: string, pointer: bigint) {
    this.owner = owner;
    this.dtype = dtype;
    this.elementCount = elementCount;
    this.byteLength = elementCount * bytesPerBufferElement(dtype);
    this.label = label;
    this.#pointer = pointer;
  }

  get disposed(): boolean {
    return this.#pointer === undefined;
  }

  /** The device pointer; undefined once disposed. */
  get pointer(): bigint | undefined {
    return this.#pointer;
  }

  /** Forgets the pointer (the backend frees the memory). */
  release(): void {
    this.#pointer = undefined;
  }
}
