/**
 * IEEE 754 binary16 (half precision) and bfloat16 conversions by hand: Node 20 has no Float16Array.
 * Decoding is exact; encoding rounds to nearest, ties to even, as `torch.Tensor.to(torch.float16)` and
 * ggml's `ggml_fp32_to_fp16` do.
 *
 * @packageDocumentation
 */

const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

let halfTable: Float32Array | undefined;

/** The 65,536 binary16 values as float32, built on first use (256 KiB). */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) table[bits] = decodeHalf(bits);
  halfTable = table;
  return table;
}

function decodeHalf(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Decodes one IEEE 754 binary16 bit pattern (0..65535) to a number (exact). */
export function float16BitsToNumber(bits: number): number {
  return halfToFloatTable()[bits & 0xffff]!;
}

/** Encodes a number as IEEE 754 binary16 bits, rounding to nearest even (overflow gives infinity). */
export function numberToFloat16Bits(value: number): number {
  scratchFloat[0] = value;
  const x = scratchBits[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    let half = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = sign | (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  // a carry out of the mantissa correctly bumps the exponent (and reaches infinity at the top)
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) === 1)) half++;
  return half;
}

/** Decodes one bfloat16 bit pattern: the upper half of a float32. */
export function bfloat16BitsToNumber(bits: number): number {
  scratchBits[0] = (bits & 0xffff) << 16;
  return scratchFloat[0]!;
}

/** Encodes a number as bfloat16 bits, rounding to nearest even (NaN stays a quiet NaN). */
export function numberToBfloat16Bits(value: number): number {
  scratchFloat[0] = value;
  const x = scratchBits[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

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
  const table = halfToFloatTable();
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
