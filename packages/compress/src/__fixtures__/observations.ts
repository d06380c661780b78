import { seededRandom } from '@fairkv/core';
import type { LayerObservation } from '../observation.js';
import type { Scorer } from '../scorers/scorer.js';

/** Deterministic 32-bit PRNG (mulberry32) so property tests draw seeds, not megabytes. */
export const mulberry32 = seededRandom;

/** Builds window scores `[queryHead][row][key]` from nested arrays (rows may be unnormalised in hand tests). */
export function windowScoresFrom(rows: number[][][]): Float32Array {
  return Float32Array.from(rows.flat(2));
}

/**
 * A random but well-formed observation: causal softmax window rows over `windowRows` last queries (the
 * distribution is peaked so heads differ), accumulated attention and key norms.
 */
export function randomObservation(options: {
  seed: number;
  seqLen: number;
  queryHeadCount: number;
  kvHeadCount: number;
  windowRows: number;
  ties?: boolean;
}): LayerObservation {
  const { seed, seqLen, queryHeadCount, kvHeadCount } = options;
  const windowRows = Math.min(options.windowRows, seqLen);
  const random = mulberry32(seed);
  const draw = () => (options.ties ? Math.floor(random() * 3) : random() ** 4 * 10);
  const windowScores = new Float32Array(queryHeadCount * windowRows * seqLen);
  for (let head = 0; head < queryHeadCount; head++) {
    for (let row = 0; row < windowRows; row++) {
      const visible = seqLen - windowRows + row + 1;
      const base = (head * windowRows + row) * seqLen;
      let sum = 0;
      for (let key = 0; key < visible; key++) {
        const value = Math.exp(draw());
        windowScores[base + key] = value;
        sum += value;
      }
      for (let key = 0; key < visible; key++) windowScores[base + key]! /= sum;
    }
  }
  const accumulatedAttention = Float32Array.from({ length: queryHeadCount * seqLen }, draw);
  const keyNorms = Float32Array.from({ length: kvHeadCount * seqLen }, () => 1 + draw());
  return { seqLen, queryHeadCount, kvHeadCount, windowScores, accumulatedAttention, keyNorms };
}

/** A scorer returning fixed `[kvHead][prefix]` scores, to test allocators and selection by hand. */
export function fixedScorer(rows: number[][]): Scorer {
  return {
    name: 'fixed',
    settings: {},
    input: 'none',
    score: ({ prefixLength }) => Float32Array.from(rows.flatMap((row) => row.slice(0, prefixLength))),
  };
}

/** A minimal observation (no attention inputs) for policies that read none. */
export function bareObservation(seqLen: number, kvHeadCount: number, queryHeadCount = kvHeadCount): LayerObservation {
  return { seqLen, queryHeadCount, kvHeadCount };
}

/** Indices of a result as plain arrays, for `toEqual`. */
export function plainIndices(indices: Int32Array[]): number[][] {
  return indices.map((kept) => Array.from(kept));
}

/** `[start, start + 1, ..., end - 1]`. */
export function range(start: number, end: number): number[] {
  return Array.from({ length: Math.max(0, end - start) }, (_, i) => start + i);
}
