import { ValidationError } from '@fairkv/core';
import { bytesPerBufferElement, type CopyOptions, type CreateBufferOptions, type HostArray } from './backend.js';
import { checkElementRange } from './buffer-range.js';
import type { BufferDType, DeviceBuffer } from './device-buffer.js';

const BUFFER_DTYPES: readonly BufferDType[] = ['f32', 'f16', 'bf16', 'i32'];

/** What {@link checkCreateBufferOptions} settles for a new buffer. */
export interface CheckedBufferOptions<D extends BufferDType> {
  dtype: D;
  elementCount: number;
  /** The caller's label, or `<dtype>[<elementCount>]`. */
  label: string;
  byteLength: number;
}

/**
 * Checks the options of a backend's `createBuffer`, as every backend must: a buffer dtype and a positive
 * integer element count.
 * @throws ValidationError naming the field and the value.
 */
export function checkCreateBufferOptions<D extends BufferDType>(
  options: CreateBufferOptions<D>,
): CheckedBufferOptions<D> {
  const { dtype, elementCount } = options;
  if (!BUFFER_DTYPES.includes(dtype)) {
    throw new ValidationError(`dtype: expected f32, f16, bf16 or i32, got ${String(dtype)}`, [
      { path: '$.dtype', message: 'expected f32, f16, bf16 or i32' },
    ]);
  }
  if (!Number.isInteger(elementCount) || elementCount <= 0) {
    throw new ValidationError(`elementCount: expected a positive integer, got ${elementCount}`, [
      { path: '$.elementCount', message: 'expected a positive integer' },
    ]);
  }
  return {
    dtype,
    elementCount,
    label: options.label ?? `${dtype}[${elementCount}]`,
    byteLength: elementCount * bytesPerBufferElement(dtype),
  };
}

/**
 * Checks the host array of an `upload` against the buffer's dtype (the Backend contract's
 * {@link HostArray} rules) and the range it writes.
 * @returns `'encode'` where f32 data must be rounded to the buffer's 16-bit dtype, `'raw'` where the
 *   array's elements are stored as they are.
 * @throws ValidationError naming the buffer, its dtype and the array type.
 */
export function checkUploadData(buffer: DeviceBuffer, data: HostArray, elementOffset: number): 'encode' | 'raw' {
  checkElementRange(buffer, 'upload', elementOffset, data.length);
  const fail = (expected: string): never => {
    throw new ValidationError(
      `upload: buffer '${buffer.label}' of dtype ${buffer.dtype} takes ${expected}, got ${data.constructor.name}`,
      [{ path: '$.data', message: `expected ${expected}` }],
    );
  };
  if (buffer.dtype === 'i32') return data instanceof Int32Array ? 'raw' : fail('Int32Array');
  if (buffer.dtype === 'f32') return data instanceof Float32Array ? 'raw' : fail('Float32Array');
  if (data instanceof Float32Array) return 'encode';
  return data instanceof Uint16Array ? 'raw' : fail('Float32Array or Uint16Array (raw bits)');
}

/**
 * Checks the value of a `fill`: an i32 buffer takes only 32-bit integers (float buffers take any
 * number, rounded to their dtype).
 * @throws ValidationError naming the value and the buffer.
 */
export function checkFillValue(buffer: DeviceBuffer, value: number): void {
  if (buffer.dtype === 'i32' && (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31)) {
    throw new ValidationError(`fill: value ${value} is not a 32-bit integer for i32 buffer '${buffer.label}'`, [
      { path: '$.value', message: 'expected a 32-bit integer' },
    ]);
  }
}

/**
 * Checks a `copy`: the same dtype on both sides, and both ranges inside their buffers.
 * @throws ValidationError naming the buffer and what was expected.
 */
export function checkCopyOptions(options: CopyOptions): void {
  const { source, destination, sourceOffset, destinationOffset, elementCount } = options;
  if (source.dtype !== destination.dtype) {
    throw new ValidationError(
      `copy: destination '${destination.label}' has dtype ${destination.dtype}, expected the source's ${source.dtype}`,
      [{ path: '$.destination', message: `expected dtype ${source.dtype}` }],
    );
  }
  checkElementRange(source, 'copy source', sourceOffset, elementCount);
  checkElementRange(destination, 'copy destination', destinationOffset, elementCount);
}
