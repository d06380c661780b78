/**
 * IEEE 754 binary16 (`f16`) and bfloat16 (`bf16`) conversions, round-to-nearest-even, as the
 * Backend contract requires when f32 values are stored in a half-precision buffer. Node 20 has no
 * `Float16Array`, so these work on raw `Uint16Array` bit patterns (how GGUF and safetensors store
 * half-precision tensors).
 *
 * @packageDocumentation
 */

const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

/** Rounds an f32 value to bfloat16 bits (round-to-nearest-even; NaN stays a quiet NaN). */
export function f32ToBf16Bits(value: number): number {
  scratchFloat[0] = value;
  const bits = scratchBits[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Widens bfloat16 bits to a number. */
export function bf16BitsToF32(bits: number): number {
  scratchBits[0] = (bits & 0xffff) << 16;
  return scratchFloat[0]!;
}

/** Rounds an f32 value to IEEE binary16 bits (round-to-nearest-even, overflow to infinity, subnormals kept). */
export function f32ToF16Bits(value: number): number {
  scratchFloat[0] = value;
  const bits = scratchBits[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const halfExponent = exponent - 112;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    let half = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    if (remainder > midpoint || (remainder === midpoint && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

let f16Table: Float32Array | undefined;

/** All 65536 binary16 values as f32, built on first use (256 KiB). */
export function f16DecodeTable(): Float32Array {
  if (f16Table === undefined) {
    f16Table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) {
      const sign = bits & 0x8000 ? -1 : 1;
      const exponent = (bits >>> 10) & 0x1f;
      const mantissa = bits & 0x3ff;
      let value: number;
      if (exponent === 0) value = sign * mantissa * 2 ** -24;
      else if (exponent === 0x1f) value = mantissa !== 0 ? Number.NaN : sign * Number.POSITIVE_INFINITY;
      else value = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
      f16Table[bits] = value;
    }
  }
  return f16Table;
}

/** Widens IEEE binary16 bits to a number. */
export function f16BitsToF32(bits: number): number {
  return f16DecodeTable()[bits & 0xffff]!;
}

/** Half-precision dtypes. */
export type HalfDType = 'f16' | 'bf16';

/** Encodes `source` into `target` (same length or longer) as `dtype` bits, round-to-nearest-even. */
export function encodeHalf(dtype: HalfDType, source: ArrayLike<number>, target: Uint16Array, targetOffset = 0): void {
  const encode = dtype === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < source.length; i++) target[targetOffset + i] = encode(source[i]!);
}

/**
 * Decodes `count` half-precision values of `source` starting at `sourceOffset` into `target` at
 * `targetOffset`.
 */
export function decodeHalf(
  dtype: HalfDType,
  source: Uint16Array,
  sourceOffset: number,
  target: Float32Array,
  targetOffset: number,
  count: number,
): void {
  if (dtype === 'bf16') {
    // an Int32Array view keeps `bits << 16` a small-integer store (a Uint32Array would take the slow path for negatives)
    const targetBits = new Int32Array(target.buffer, target.byteOffset, target.length);
    for (let i = 0; i < count; i++) targetBits[targetOffset + i] = source[sourceOffset + i]! << 16;
    return;
  }
  const table = f16DecodeTable();
  for (let i = 0; i < count; i++) target[targetOffset + i] = table[source[sourceOffset + i]!]!;
}

/** Rounds a number to the nearest value representable in `dtype` (f32, f16 or bf16). */
export function roundToDType(dtype: 'f32' | HalfDType, value: number): number {
  if (dtype === 'f32') return Math.fround(value);
  return dtype === 'f16' ? f16BitsToF32(f32ToF16Bits(value)) : bf16BitsToF32(f32ToBf16Bits(value));
}
