/**
 * IEEE 754 binary16 (half precision) and bfloat16 conversions by hand: Node 20 has no Float16Array.
 * Decoding is exact; encoding rounds to nearest, ties to even, as `torch.Tensor.to(torch.float16)` and
 * ggml's `ggml_fp32_to_fp16` do.
 *
 * The scalar conversions are `@fairkv/kernels`' (one implementation for files and device buffers);
 * this module adds the little-endian byte decoders model files need.
 *
 * @packageDocumentation
 */
import { bf16BitsToF32, f16DecodeTable, f32ToBf16Bits, f32ToF16Bits } from '@fairkv/kernels';

/** Decodes one IEEE 754 binary16 bit pattern (0..65535) to a number (exact). */
export function float16BitsToNumber(bits: number): number {
  return f16DecodeTable()[bits & 0xffff]!;
}

/** Encodes a number as IEEE 754 binary16 bits, rounding to nearest even (overflow gives infinity). */
export const numberToFloat16Bits: (value: number) => number = f32ToF16Bits;

/** Decodes one bfloat16 bit pattern: the upper half of a float32. */
export const bfloat16BitsToNumber: (bits: number) => number = bf16BitsToF32;

/** Encodes a number as bfloat16 bits, rounding to nearest even (NaN stays a quiet NaN). */
export const numberToBfloat16Bits: (value: number) => number = f32ToBf16Bits;

/**
 * Decodes `count` little-endian binary16 values starting at `bytes[byteOffset]` into `target`
 * (from `targetOffset`).
 */
export function decodeFloat16Array(
  bytes: Uint8Array,
  byteOffset: number,
  count: number,
  target: Float32Array,
  targetOffset = 0,
): void {
  const table = f16DecodeTable();
  for (let index = 0; index < count; index++) {
    const position = byteOffset + 2 * index;
    target[targetOffset + index] = table[bytes[position]! | (bytes[position + 1]! << 8)]!;
  }
}

/** Decodes `count` little-endian bfloat16 values starting at `bytes[byteOffset]` into `target`. */
export function decodeBfloat16Array(
  bytes: Uint8Array,
  byteOffset: number,
  count: number,
  target: Float32Array,
  targetOffset = 0,
): void {
  const bits = new Uint32Array(target.buffer, target.byteOffset + 4 * targetOffset, count);
  for (let index = 0; index < count; index++) {
    const position = byteOffset + 2 * index;
    bits[index] = ((bytes[position]! | (bytes[position + 1]! << 8)) << 16) >>> 0;
  }
}
