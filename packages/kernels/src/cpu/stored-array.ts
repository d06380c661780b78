import { decodeHalf, f32ToBf16Bits, f32ToF16Bits } from '../half-precision.js';

/** The host storage of a float buffer of the CPU backend: f32 values, or raw half-precision bits. */
export type StoredArray = { dtype: 'f32'; data: Float32Array } | { dtype: 'f16' | 'bf16'; data: Uint16Array };

/**
 * `count` values of `source` from `offset` as f32: a view without copying for f32 storage, or the
 * values decoded into `scratch` (at least `count` long) for f16/bf16.
 */
export function storedRow(source: StoredArray, offset: number, count: number, scratch: Float32Array): Float32Array {
  if (source.dtype === 'f32') return source.data.subarray(offset, offset + count);
  decodeHalf(source.dtype, source.data, offset, scratch, 0, count);
  return scratch;
}

/** Writes `count` values of `values` (from `valuesOffset`) into `target` at `offset`, rounding to its dtype. */
export function writeStored(
  target: StoredArray,
  offset: number,
  values: Float32Array,
  valuesOffset: number,
  count: number,
): void {
  if (target.dtype === 'f32') {
    target.data.set(values.subarray(valuesOffset, valuesOffset + count), offset);
    return;
  }
  const encode = target.dtype === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
  const data = target.data;
  for (let i = 0; i < count; i++) data[offset + i] = encode(values[valuesOffset + i]!);
}
