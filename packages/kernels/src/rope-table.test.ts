import { describe, expect, it } from 'vitest';
import { buildRopeTable, ropeInverseFrequencies } from './rope-table.js';

const llama3 = {
  type: 'llama3',
  factor: 8,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositionEmbeddings: 8192,
} as const;

describe('rope table', () => {
  it('computes base^(-2i/d) without scaling', () => {
    const inverse = ropeInverseFrequencies({ headDim: 8, base: 10000, scaling: null });
    expect(Array.from(inverse)).toEqual([1, 10000 ** -0.25, 10000 ** -0.5, 10000 ** -0.75]);
  });

  it('applies Llama 3.1 scaling by wavelength band (transformers _compute_llama3_parameters)', () => {
    const plain = ropeInverseFrequencies({ headDim: 128, base: 500000, scaling: null });
    const scaled = ropeInverseFrequencies({ headDim: 128, base: 500000, scaling: llama3 });
    let bands = { high: 0, low: 0, medium: 0 };
    for (let i = 0; i < 64; i++) {
      const wavelength = (2 * Math.PI) / plain[i]!;
      if (wavelength < 8192 / 4) {
        expect(scaled[i]).toBe(plain[i]);
        bands = { ...bands, high: bands.high + 1 };
      } else if (wavelength > 8192) {
        expect(scaled[i]).toBeCloseTo(plain[i]! / 8, 15);
        bands = { ...bands, low: bands.low + 1 };
      } else {
        const smooth = (8192 / wavelength - 1) / 3;
        expect(scaled[i]).toBeCloseTo((1 - smooth) * (plain[i]! / 8) + smooth * plain[i]!, 15);
        expect(scaled[i]!).toBeLessThanOrEqual(plain[i]!);
        expect(scaled[i]!).toBeGreaterThanOrEqual(plain[i]! / 8);
        bands = { ...bands, medium: bands.medium + 1 };
      }
    }
    expect(bands.high).toBeGreaterThan(0);
    expect(bands.low).toBeGreaterThan(0);
    expect(bands.medium).toBeGreaterThan(0);
  });

  it('applies linear position interpolation', () => {
    const plain = ropeInverseFrequencies({ headDim: 16, base: 10000, scaling: null });
    const scaled = ropeInverseFrequencies({ headDim: 16, base: 10000, scaling: { type: 'linear', factor: 4 } });
    for (const [i, value] of scaled.entries()) expect(value).toBe(plain[i]! / 4);
  });

  it('lays out cos then sin per position, computed in float64', () => {
    const table = buildRopeTable({ headDim: 4, base: 10000, scaling: null, positionCount: 3000 });
    expect(table.length).toBe(3000 * 4);
    expect(Array.from(table.subarray(0, 4))).toEqual([1, 1, 0, 0]);
    const position = 2999;
    const angle = position * 10000 ** -0.5;
    expect(table[position * 4 + 1]).toBe(Math.fround(Math.cos(angle)));
    expect(table[position * 4 + 3]).toBe(Math.fround(Math.sin(angle)));
    expect(table[position * 4]).toBe(Math.fround(Math.cos(position)));
  });

  it('names the field it rejects', () => {
    expect(() => ropeInverseFrequencies({ headDim: 7, base: 10000, scaling: null })).toThrow(/headDim/);
    expect(() => buildRopeTable({ headDim: 8, base: 10000, scaling: null, positionCount: 0 })).toThrow(/positionCount/);
  });
});
