import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pool1d } from './pool1d.js';

describe('pool1d (PyTorch max_pool1d / avg_pool1d, stride 1, padding kernel/2)', () => {
  const row = [1, 5, 2, 0, 3];

  it('max pooling ignores the padding', () => {
    expect(Array.from(pool1d(Float32Array.from(row), 1, 5, 3, 'max'))).toEqual([5, 5, 5, 3, 3]);
  });

  it('avg pooling counts the padding (count_include_pad=True): edge sums divide by the kernel', () => {
    const pooled = Array.from(pool1d(Float32Array.from(row), 1, 5, 3, 'avg'));
    const expected = [(1 + 5) / 3, (1 + 5 + 2) / 3, (5 + 2 + 0) / 3, (2 + 0 + 3) / 3, (0 + 3) / 3];
    for (const [i, value] of pooled.entries()) expect(value).toBeCloseTo(expected[i]!, 6);
  });

  it('pools each row separately and a kernel of 1 is the identity', () => {
    const two = Float32Array.from([1, 0, 0, /* row 1 */ 0, 0, 7]);
    expect(Array.from(pool1d(two, 2, 3, 3, 'max'))).toEqual([1, 1, 0, 0, 7, 7]);
    expect(Array.from(pool1d(two, 2, 3, 1, 'max'))).toEqual(Array.from(two));
  });

  it('a kernel wider than the row takes the whole row', () => {
    expect(Array.from(pool1d(Float32Array.from([2, 9]), 1, 2, 7, 'max'))).toEqual([9, 9]);
  });
});

describe('pool1d max equals the direct window maximum (property)', () => {
  it('on arbitrary rows and odd kernels', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -50, max: 50 }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 0, max: 6 }),
        (items, half) => {
          const kernel = 2 * half + 1;
          const expected = items.map((_, j) => Math.max(...items.slice(Math.max(0, j - half), j + half + 1)));
          expect(Array.from(pool1d(Float32Array.from(items), 1, items.length, kernel, 'max'))).toEqual(expected);
        },
      ),
    );
  });

  it('skips NaN like the direct loop (all-NaN windows give -Infinity), row by row, on rows longer than several kernels', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: -50, max: 50 }), fc.constant(Number.NaN)), { minLength: 1, maxLength: 90 }),
        fc.integer({ min: 1, max: 8 }),
        (items, half) => {
          const kernel = 2 * half + 1;
          const direct = (row: number[]): number[] =>
            row.map((_, j) => {
              const window = row.slice(Math.max(0, j - half), j + half + 1).filter((value) => !Number.isNaN(value));
              return window.length === 0 ? Number.NEGATIVE_INFINITY : Math.max(...window);
            });
          const reversed = [...items].reverse();
          const pooled = pool1d(Float32Array.from([...items, ...reversed]), 2, items.length, kernel, 'max');
          expect(Array.from(pooled)).toEqual([...direct(items), ...direct(reversed)]);
        },
      ),
    );
  });
});
