import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { copyScores, kthLargest } from './kth-largest.js';

describe('kthLargest', () => {
  it('finds the k-th largest of a hand-made array with duplicates', () => {
    const values = Float32Array.from([3, 1, 4, 1, 5, 9, 2, 6, 5, 3]);
    expect(kthLargest(Float32Array.from(values), 10, 1)).toBe(9);
    expect(kthLargest(Float32Array.from(values), 10, 3)).toBe(5);
    expect(kthLargest(Float32Array.from(values), 10, 4)).toBe(5);
    expect(kthLargest(Float32Array.from(values), 10, 10)).toBe(1);
  });

  it('rejects k outside [1, count]', () => {
    expect(() => kthLargest(new Float32Array(3), 3, 0)).toThrow(RangeError);
    expect(() => kthLargest(new Float32Array(3), 3, 4)).toThrow(/outside \[1, 3\]/);
  });

  it('equals the sorted order on arbitrary arrays (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -20, max: 20 }), { minLength: 1, maxLength: 200 }),
        fc.nat(),
        (items, pick) => {
          const values = Float32Array.from(items);
          const k = (pick % values.length) + 1;
          const sorted = [...items].sort((a, b) => b - a);
          expect(kthLargest(Float32Array.from(values), values.length, k)).toBe(sorted[k - 1]);
        },
      ),
    );
  });

  it('copyScores maps NaN to -Infinity', () => {
    const target = new Float32Array(3);
    copyScores(Float32Array.from([1, Number.NaN, 2, 7]), 1, 3, target);
    expect(Array.from(target)).toEqual([Number.NEGATIVE_INFINITY, 2, 7]);
  });
});
