import { describe, expect, it } from 'vitest';
import { pcgHash, samplingSeed, seedToUniform } from './pcg-hash.js';

describe('pcg hash', () => {
  it('matches the reference pcg_hash (Jarzynski & Olano 2020) computed with 64-bit integers', () => {
    // values from a Python transcription of the paper's C code
    expect([0, 1, 42, 0xffffffff].map(pcgHash)).toEqual([129708002, 2831084092, 1223963391, 3861530882]);
    expect(pcgHash(-1)).toBe(pcgHash(0xffffffff));
  });

  it('gives uniforms in [0, 1) on a 2^-24 grid', () => {
    for (let seed = 0; seed < 1000; seed++) {
      const u = seedToUniform(seed);
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      expect(Number.isInteger(u * 2 ** 24)).toBe(true);
    }
  });

  it('derives distinct per-step seeds as signed 32-bit integers', () => {
    const seeds = new Set(Array.from({ length: 1000 }, (_, step) => samplingSeed(1234, step)));
    expect(seeds.size).toBe(1000);
    for (const seed of seeds) expect(seed).toBe(seed | 0);
    expect(samplingSeed(1234, 7)).toBe(samplingSeed(1234, 7));
  });
});
