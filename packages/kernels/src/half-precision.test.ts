import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  decodeHalf,
  encodeHalf,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  roundToDType,
} from './half-precision.js';

/** Whether `bits` is the nearest half value to `x` (ties to an even mantissa). */
function isNearest(decode: (bits: number) => number, x: number, bits: number): boolean {
  const here = decode(bits);
  const distance = Math.abs(x - here);
  for (const neighbour of [bits - 1, bits + 1]) {
    if ((neighbour & 0x7fff) > 0x7f80 && decode === bf16BitsToF32) continue;
    const other = decode(neighbour & 0xffff);
    if (!Number.isFinite(other) || Math.sign(other) !== Math.sign(here)) continue;
    const otherDistance = Math.abs(x - other);
    if (otherDistance < distance) return false;
    if (otherDistance === distance && (bits & 1) === 1) return false;
  }
  return true;
}

describe('half precision', () => {
  it('round-trips every f16 bit pattern except NaN payloads', () => {
    const mismatches: number[] = [];
    for (let bits = 0; bits < 65536; bits++) {
      const value = f16BitsToF32(bits);
      const back = f32ToF16Bits(value);
      if (Number.isNaN(value) ? !Number.isNaN(f16BitsToF32(back)) : back !== bits) mismatches.push(bits);
    }
    expect(mismatches).toEqual([]);
  });

  it('round-trips every bf16 bit pattern except NaN payloads', () => {
    const mismatches: number[] = [];
    for (let bits = 0; bits < 65536; bits++) {
      const value = bf16BitsToF32(bits);
      const back = f32ToBf16Bits(value);
      if (Number.isNaN(value) ? !Number.isNaN(bf16BitsToF32(back)) : back !== bits) mismatches.push(bits);
    }
    expect(mismatches).toEqual([]);
  });

  it('matches IEEE round-to-nearest-even on known f16 values (numpy astype(float16))', () => {
    const cases: [number, number][] = [
      [1, 15360],
      [65504, 31743],
      [65520, 31744],
      [1e-8, 0],
      [2 ** -24, 1],
      [2 ** -25, 0],
      [1.00048828125, 15360],
      [1.000732421875, 15361],
      [-2, 0xc000],
    ];
    for (const [value, bits] of cases) expect(f32ToF16Bits(value), String(value)).toBe(bits);
  });

  it('rounds to the nearest f16 value, ties to even', () => {
    fc.assert(
      fc.property(fc.float({ min: -60000, max: 60000, noNaN: true }), (x) => {
        expect(isNearest(f16BitsToF32, Math.fround(x), f32ToF16Bits(x))).toBe(true);
      }),
    );
  });

  it('rounds to the nearest bf16 value, ties to even', () => {
    fc.assert(
      fc.property(fc.float({ min: Math.fround(-1e30), max: Math.fround(1e30), noNaN: true }), (x) => {
        expect(isNearest(bf16BitsToF32, Math.fround(x), f32ToBf16Bits(x))).toBe(true);
      }),
    );
  });

  it('encodes and decodes arrays, and roundToDType agrees', () => {
    const values = Float32Array.from([0.1, -2.71875, 1e4, 7e-5]);
    for (const dtype of ['f16', 'bf16'] as const) {
      const bits = new Uint16Array(6);
      encodeHalf(dtype, values, bits, 1);
      const widened = new Float32Array(5);
      decodeHalf(dtype, bits, 1, widened, 1, 4);
      expect(Array.from(widened.subarray(1))).toEqual(Array.from(values, (v) => roundToDType(dtype, v)));
      expect(widened[0]).toBe(0);
    }
    expect(roundToDType('f32', 0.1)).toBe(Math.fround(0.1));
  });
});
