import { describe, expect, it } from 'vitest';
import { reduceGroups } from './group-reduction.js';

describe('reduceGroups', () => {
  // 4 query heads, 2 kv heads: query heads 0,1 -> kv 0; 2,3 -> kv 1 (repeat_kv layout); rows of stride 3, read 2
  const input = Float32Array.from([1, 4, 99, 3, 2, 99, 10, 0, 99, 20, 6, 99]);

  it('mean averages the query heads of each group', () => {
    expect(Array.from(reduceGroups(input, 4, 2, 2, 3, 'mean'))).toEqual([2, 3, 15, 3]);
  });

  it('max keeps the largest per key', () => {
    expect(Array.from(reduceGroups(input, 4, 2, 2, 3, 'max'))).toEqual([3, 4, 20, 6]);
  });

  it('is the identity without grouping', () => {
    expect(Array.from(reduceGroups(Float32Array.from([1, 2, 3, 4]), 2, 2, 2, 2, 'mean'))).toEqual([1, 2, 3, 4]);
  });
});
