import { describe, expect, it } from 'vitest';
import { hostVar, readLayerShares, shareVar } from './ilp-model.js';

describe('readLayerShares', () => {
  it('keeps a replica only where its hosting binary rounds to 1 (glpk accepts binaries within 1e-5 of an integer)', () => {
    const vars = {
      [hostVar(0, 0, 0)]: 1,
      [shareVar(0, 0, 0)]: 0.999999,
      // a sliver on a device whose hosting variable glpk left at 1e-6: not a replica
      [hostVar(0, 0, 1)]: 1e-6,
      [shareVar(0, 0, 1)]: 1e-6,
      [hostVar(0, 1, 0)]: 0.999995,
      [shareVar(0, 1, 0)]: 0.25,
      [hostVar(0, 1, 1)]: 1,
      [shareVar(0, 1, 1)]: 0.75,
    };
    const shares = readLayerShares(vars, 0, 2, 2);
    expect([...shares[0]!]).toEqual([[0, 0.999999]]);
    expect([...shares[1]!]).toEqual([
      [0, 0.25],
      [1, 0.75],
    ]);
  });

  it('falls back to the largest share when no hosting variable rounds to 1', () => {
    const vars = { [shareVar(0, 0, 0)]: 0.4, [shareVar(0, 0, 1)]: 0.6 };
    expect([...readLayerShares(vars, 0, 1, 2)[0]!]).toEqual([[1, 1]]);
  });
});
