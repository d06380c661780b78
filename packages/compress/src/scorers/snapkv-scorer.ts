import { reduceGroups } from '../selection/group-reduction.js';
import { type Pooling, pool1d } from '../selection/pool1d.js';
import { missingInput } from './missing-input.js';
import type { Scorer } from './scorer.js';

/** Options of {@link snapKvScorer}. */
export interface SnapKvScorerOptions {
  /** Odd pooling kernel; default 7 (Ada-KV's `c*_w32_k7_maxpool.json` configs, KVCache-Factory's Ada/HeadKV clusters). */
  kernelSize?: number;
  /** `max` (default, as Ada-KV and KVCache-Factory's Ada-KV/HeadKV) or `avg` (SnapKV's and kvpress's default). */
  pooling?: Pooling;
}

/**
 * SnapKV scoring (Li et al., "SnapKV: LLM Knows What You are Looking for Before Generation", arXiv 2404.14469):
 * the attention the last `window` prompt queries pay to each earlier key, averaged over those queries,
 * reduced over the kv head's query group (mean or max, before pooling, in the order of Ada-KV's `gqa_support`),
 * then smoothed by 1-D pooling (stride 1, padding kernel/2). Averaging rather than summing the window (SnapKV
 * sums, Ada-KV and kvpress average) scales every head alike, so rankings and Ada-KV's cross-head top-k are equal.
 */
export function snapKvScorer(options: SnapKvScorerOptions = {}): Scorer {
  const kernelSize = options.kernelSize ?? 7;
  const pooling = options.pooling ?? 'max';
  return {
    name: 'snapkv',
    settings: { kernelSize, pooling },
    input: 'windowScores',
    score({ observation, windowSize, prefixLength, groupReduction }) {
      const { seqLen, queryHeadCount, kvHeadCount, windowScores } = observation;
      const rows = windowScores ? windowScores.length / (queryHeadCount * seqLen) : 0;
      if (!windowScores || rows < windowSize) {
        throw missingInput(
          'snapkv',
          'windowScores',
          `[${queryHeadCount}][W >= ${windowSize}][${seqLen}], got W = ${rows}`,
        );
      }
      const perQueryHead = new Float32Array(queryHeadCount * prefixLength);
      for (let head = 0; head < queryHeadCount; head++) {
        const target = head * prefixLength;
        for (let row = rows - windowSize; row < rows; row++) {
          const source = (head * rows + row) * seqLen;
          for (let j = 0; j < prefixLength; j++) perQueryHead[target + j]! += windowScores[source + j]!;
        }
        for (let j = 0; j < prefixLength; j++) perQueryHead[target + j]! /= windowSize;
      }
      const reduced = reduceGroups(
        perQueryHead,
        queryHeadCount,
        kvHeadCount,
        prefixLength,
        prefixLength,
        groupReduction,
      );
      return pool1d(reduced, kvHeadCount, prefixLength, kernelSize, pooling);
    },
  };
}
