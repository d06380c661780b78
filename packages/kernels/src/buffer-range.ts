import { ValidationError } from '@fairkv/core';
import type { DeviceBuffer, ElementRange } from './backend.js';

/**
 * Checks that `[offset, offset + count)` lies inside `buffer`, as every backend's `upload`, `download`,
 * `fill` and `copy` must.
 * @throws ValidationError naming the operation, the range and the buffer.
 */
export function checkElementRange(buffer: DeviceBuffer, operation: string, offset: number, count: number): void {
  if (
    !Number.isInteger(offset) ||
    !Number.isInteger(count) ||
    offset < 0 ||
    count < 0 ||
    offset + count > buffer.elementCount
  ) {
    throw new ValidationError(
      `${operation}: range [${offset}, ${offset + count}) is outside buffer '${buffer.label}' of ${buffer.elementCount} elements`,
      [{ path: '$.elementOffset', message: `expected a range inside [0, ${buffer.elementCount})` }],
    );
  }
}

/**
 * Resolves an {@link ElementRange} with its defaults (offset 0, count to the end of the buffer) and
 * checks it with {@link checkElementRange}.
 */
export function resolveElementRange(
  buffer: DeviceBuffer,
  operation: string,
  range: ElementRange,
): { offset: number; count: number } {
  const offset = range.elementOffset ?? 0;
  const count = range.elementCount ?? buffer.elementCount - offset;
  checkElementRange(buffer, operation, offset, count);
  return { offset, count };
}
