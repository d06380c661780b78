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
