/**
 * The buffer handle of the Backend contract (`backend.ts`), apart so that the kernel argument types can
 * name it without importing the contract that names them.
 *
 * @packageDocumentation
 */
import type { DType } from '@fairkv/core';

/** Element type of a device buffer: a storage/activation float dtype, or `i32` for indices. */
export type BufferDType = DType | 'i32';

/**
 * A buffer in a backend's memory. Created only by {@link Backend.createBuffer}; the handle is opaque
 * beyond these fields, and a buffer from one backend cannot be used with another (a `BackendError`).
 */
export interface DeviceBuffer<D extends BufferDType = BufferDType> {
  /** Element type. */
  readonly dtype: D;
  /** Number of elements. */
  readonly elementCount: number;
  /** Exact bytes this buffer holds on the device: `elementCount * bytesPerBufferElement(dtype)`. */
  readonly byteLength: number;
  /** Free-form name used in error messages and memory reports. */
  readonly label: string;
  /** True after {@link Backend.disposeBuffer} (or {@link Backend.dispose}); using it then throws. */
  readonly disposed: boolean;
}
