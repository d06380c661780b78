import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countTopPerRow, selectTopPositions } from './select-top.js';

function referenceTop(scores: number[], k: number): number[] {
  const clean = scores.map((value) => (Number.isNaN(value) ? Number.NEGATIVE_INFINITY : value));
  return clean
    .map((value, index) => ({ value, index }))
    .sort((a, b) => b.value - a.value || a.index - b.index)
    .slice(0, k)
    .map((entry) => entry.index)
    .sort((a, b) => a - b);
}

function select(scores: number[], k: number, offset = 0): number[] {
  const source = Float32Array.from(scores);
  const length = scores.length - offset;
  const out = new Int32Array(Math.min(Math.max(k, 0), length));
  const written = selectTopPositions(source, offset, length, k, new Float32Array(length), out);
  return Array.from(out.subarray(0, written));
}

describe('selectTopPositions', () => {
  it('keeps the highest scores in position order', () => {
    expect(select([0.1, 0.5, 0.2, 0.9, 0.3], 2)).toEqual([1, 3]);
    expect(select([0.1, 0.5, 0.2, 0.9, 0.3], 3)).toEqual([1, 3, 4]);
  });

  it('breaks ties at the threshold towards the earliest positions', () => {
    expect(select([1, 2, 2, 2, 0], 2)).toEqual([1, 2]);
    expect(select([5, 5, 5, 5], 3)).toEqual([0, 1, 2]);
    expect(select([1, 3, 1, 3, 1], 3)).toEqual([0, 1, 3]);
  });

  it('reads a row at an offset and returns positions relative to it', () => {
    expect(select([9, 9, 0.1, 0.7, 0.4], 1, 2)).toEqual([1]);
  });

  it('keeps everything when k >= length and nothing when k <= 0', () => {
    expect(select([3, 1, 2], 5)).toEqual([0, 1, 2]);
    expect(select([3, 1, 2], 0)).toEqual([]);
  });

  it('ranks NaN below every number', () => {
    expect(select([Number.NaN, -5, Number.NaN, -7], 2)).toEqual([1, 3]);
  });

  it('matches a full sort on arbitrary scores, ties included (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 120 }),
        fc.nat(),
        (items, pick) => {
          const k = pick % (items.length + 2);
          expect(select(items, k)).toEqual(referenceTop(items, k));
        },
      ),
    );
  });
});

describe('countTopPerRow', () => {
  it('counts the layer-wide top-k per row, ties in flattened order', () => {
    const scores = Float32Array.from([0.9, 0.1, 0.8, /* row 1 */ 0.5, 0.9, 0.05]);
    expect(Array.from(countTopPerRow(scores, 2, 3, 3))).toEqual([2, 1]);
    expect(Array.from(countTopPerRow(Float32Array.from([1, 1, 1, 1]), 2, 2, 3))).toEqual([2, 1]);
    expect(Array.from(countTopPerRow(scores, 2, 3, 6))).toEqual([3, 3]);
    expect(Array.from(countTopPerRow(scores, 2, 3, 0))).toEqual([0, 0]);
  });

  it('agrees with a full sort (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 30 }),
        fc.nat(),
        fc.integer({ min: 0, max: 1000 }),
        (rows, length, pick, seed) => {
          const items = Array.from({ length: rows * length }, (_, i) => ((i * 7919 + seed) % 11) / 3);
          const k = pick % (rows * length + 1);
          const top = referenceTop(items, k);
          const expected = Array.from(
            { length: rows },
            (_, row) => top.filter((i) => Math.floor(i / length) === row).length,
          );
          expect(Array.from(countTopPerRow(Float32Array.from(items), rows, length, k))).toEqual(expected);
        },
      ),
    );
  });
});
