import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseGateRows, proportionalLengths, proportionalSplit } from './proportional-lengths.js';

describe('proportionalSplit', () => {
  it('gives each head its share of what is left after the minimum', () => {
    expect(proportionalSplit([1, 3], 1000, 100, 10_000)).toEqual([300, 700]);
  });

  it('keeps heads of weight 0 at the minimum and caps the rest, passing the excess on', () => {
    // 4 heads, 4 x 100 kept, 3600 to share: head 2 alone would take 2400 > 1000
    expect(proportionalSplit([0, 1, 4, 1], 4000, 100, 1000)).toEqual([100, 1000, 1000, 1000]);
    expect(proportionalSplit([0, 1, 8, 1], 3000, 100, 2000)).toEqual([100, 450, 2000, 450]);
  });

  it('never goes below the minimum or above the maximum, and spends at most the budget', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 16 }),
        fc.integer({ min: 0, max: 1 << 20 }),
        (weights, extra) => {
          const lengths = proportionalSplit(weights, 384 * weights.length + extra, 384, 32768);
          for (const length of lengths) {
            expect(length).toBeGreaterThanOrEqual(384);
            expect(length).toBeLessThanOrEqual(32768);
          }
          const spent = lengths.reduce((sum, length) => sum + length, 0);
          expect(spent).toBeLessThanOrEqual(384 * weights.length + extra);
          // what is not spent: rounding, heads of weight 0, or every weighted head at the maximum
          const weighted = weights.filter((weight) => weight > 0).length;
          if (weighted > 0 && lengths.some((length, head) => weights[head]! > 0 && length < 32768)) {
            expect(384 * weights.length + extra - spent).toBeLessThan(weights.length);
          }
        },
      ),
    );
  });
});

describe('proportionalLengths', () => {
  const gates = parseGateRows('0.6\t0\t0.97\t0.68\n1\t0\t0.81\t1\n')[0]!;

  it('reads a gate file', () => {
    expect(gates).toEqual([0.6, 0, 0.97, 0.68]);
  });

  it('is the same every run and differs between requests', () => {
    const options = { budgetPerHead: 4096, min: 384, max: 32768, spread: 0.5 };
    const first = proportionalLengths(gates, 8, options);
    expect(proportionalLengths(gates, 8, options)).toEqual(first);
    expect(new Set(first.map((row) => row.join())).size).toBe(8);
    for (const row of first) expect(row[1]).toBe(384);
  });
});
