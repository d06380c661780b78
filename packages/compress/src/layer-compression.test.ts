import { describe, expect, it } from 'vitest';
import { validateLayerCompression } from './layer-compression.js';

const ok = { budgets: Int32Array.from([3, 2]), indices: [Int32Array.from([0, 4, 5]), Int32Array.from([4, 5])] };

describe('validateLayerCompression', () => {
  it('accepts sorted, unique, in-range indices that keep the window', () => {
    expect(() => validateLayerCompression(ok, 6, 2)).not.toThrow();
  });

  it('names each broken invariant', () => {
    expect(() => validateLayerCompression({ ...ok, budgets: Int32Array.from([3, 3]) }, 6)).toThrow(
      /indices\[1\]: holds 2 indices, budget is 3/,
    );
    expect(() =>
      validateLayerCompression({ budgets: Int32Array.from([2]), indices: [Int32Array.from([3, 3])] }, 6),
    ).toThrow(/not above 3/);
    expect(() =>
      validateLayerCompression({ budgets: Int32Array.from([1]), indices: [Int32Array.from([6])] }, 6),
    ).toThrow(/outside \[0, 6\)/);
    expect(() => validateLayerCompression(ok, 6, 3)).toThrow(/window position 3 not kept/);
  });
});
