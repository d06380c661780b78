import { describe, expect, it } from 'vitest';
import { roundHalfEven } from './round-half-even.js';

describe('roundHalfEven (torch.round)', () => {
  it('rounds halves to even and the rest to nearest', () => {
    expect([0.5, 1.5, 2.5, 3.5, -0.5, -1.5].map(roundHalfEven)).toEqual([0, 2, 2, 4, 0, -2]);
    expect([2.4, 2.6, 7, -2.6].map(roundHalfEven)).toEqual([2, 3, 7, -3]);
  });
});
