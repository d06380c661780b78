import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bfloat16BitsToNumber, float16BitsToNumber, numberToBfloat16Bits, numberToFloat16Bits } from './float16.js';

describe('float16 and bfloat16', () => {
  it('decodes known binary16 patterns', () => {
    expect(float16BitsToNumber(0x3c00)).toBe(1);
    expect(float16BitsToNumber(0xc000)).toBe(-2);
    expect(float16BitsToNumber(0x7bff)).toBe(65504);
    expect(float16BitsToNumber(0x0001)).toBe(2 ** -24);
    expect(float16BitsToNumber(0x0400)).toBe(2 ** -14);
    expect(float16BitsToNumber(0x7c00)).toBe(Number.POSITIVE_INFINITY);
    expect(Object.is(float16BitsToNumber(0x8000), -0)).toBe(true);
    expect(float16BitsToNumber(0x7e00)).toBeNaN();
  });

  it('encodes every non-NaN binary16 value back to its own bits', () => {
    const mismatches: number[] = [];
    let checked = 0;
    for (let bits = 0; bits < 65536; bits++) {
      const value = float16BitsToNumber(bits);
      if (Number.isNaN(value)) continue;
      checked++;
      if (numberToFloat16Bits(value) !== bits) mismatches.push(bits);
    }
    expect(mismatches).toEqual([]);
    expect(checked).toBe(65536 - 2 * 1023);
  });

  it('rounds to the nearest binary16, ties to even (property)', () => {
    fc.assert(
      fc.property(fc.float({ min: -70000, max: 70000, noNaN: true }), (value) => {
        const bits = numberToFloat16Bits(value);
        const rounded = float16BitsToNumber(bits);
        if (!Number.isFinite(rounded)) {
          expect(Math.abs(value)).toBeGreaterThanOrEqual(65520);
          return;
        }
        const magnitude = bits & 0x7fff;
        for (const neighbour of [magnitude - 1, magnitude + 1]) {
          if (neighbour < 0 || neighbour > 0x7bff) continue;
          const other = float16BitsToNumber((bits & 0x8000) | neighbour);
          const distance = Math.abs(Math.fround(value) - rounded);
          const otherDistance = Math.abs(Math.fround(value) - other);
          expect(distance).toBeLessThanOrEqual(otherDistance);
          if (distance === otherDistance) expect(magnitude % 2).toBe(0);
        }
      }),
      { seed: 5, numRuns: 2000 },
    );
    // exact ties: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10 and goes to the even 1
    expect(numberToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(numberToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(numberToFloat16Bits(65520)).toBe(0x7c00);
    expect(numberToFloat16Bits(2 ** -25)).toBe(0);
    expect(numberToFloat16Bits(3 * 2 ** -26)).toBe(1);
  });

  it('round-trips bfloat16 bits and rounds ties to even', () => {
    const mismatches: number[] = [];
    for (let bits = 0; bits < 65536; bits++) {
      const value = bfloat16BitsToNumber(bits);
      if (!Number.isNaN(value) && numberToBfloat16Bits(value) !== bits) mismatches.push(bits);
    }
    expect(mismatches).toEqual([]);
    expect(bfloat16BitsToNumber(0x3f80)).toBe(1);
    expect(numberToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(numberToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(Number.isNaN(bfloat16BitsToNumber(numberToBfloat16Bits(Number.NaN)))).toBe(true);
  });
});
