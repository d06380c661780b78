import type { LayerObservation } from '../observation.js';
import { type GroupReduction, reduceGroups } from '../selection/group-reduction.js';
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
 * Mean attention of the last `windowSize` queries to each prefix key, from the device-reduced sums when they cover
 * exactly that window, else from the full window scores. With `mean` GQA reduction the query heads of a group are
 * accumulated straight into their kv head (`[kvHead][prefixLength]`, one pass, no intermediate); with `max` the
 * result is per query head (`[queryHead][prefixLength]`).
 */
function windowMeans(
  observation: LayerObservation,
  windowSize: number,
  prefixLength: number,
  groupReduction: GroupReduction,
): Float32Array {
  const { seqLen, queryHeadCount, kvHeadCount, windowScores, windowAttentionSums, windowAttentionRows } = observation;
  const fold = groupReduction === 'mean' ? queryHeadCount / kvHeadCount : 1;
  const outputRows = queryHeadCount / fold;
  const means = new Float32Array(outputRows * prefixLength);
  const scale = 1 / (windowSize * fold);
  const useSums = windowAttentionSums !== undefined && windowAttentionRows === windowSize;
  const rows = windowScores ? windowScores.length / (queryHeadCount * seqLen) : 0;
  if (!useSums && (!windowScores || rows < windowSize)) {
    const sums = windowAttentionSums
      ? `, or windowAttentionSums over ${windowSize} rows (got ${windowAttentionRows})`
      : '';
    throw missingInput(
      'snapkv',
      'windowScores',
      `[${queryHeadCount}][W >= ${windowSize}][${seqLen}]${sums}, got W = ${rows}`,
    );
  }
  // One float64 accumulator row per output row; window rows are added four at a time, so the accumulator is
  // loaded and stored once per four input rows (the pass over the [Hq][W][n] block dominates the policy cost).
  const accumulator = new Float64Array(prefixLength);
  for (let output = 0; output < outputRows; output++) {
    accumulator.fill(0);
    for (let head = output * fold; head < (output + 1) * fold; head++) {
      if (useSums) {
        const source = head * seqLen;
        for (let j = 0; j < prefixLength; j++) accumulator[j]! += windowAttentionSums[source + j]!;
        continue;
      }
      const scores = windowScores!;
      let row = rows - windowSize;
      for (; row + 4 <= rows; row += 4) {
        const first = (head * rows + row) * seqLen;
        const second = first + seqLen;
        const third = second + seqLen;
        const fourth = third + seqLen;
        for (let j = 0; j < prefixLength; j++) {
          accumulator[j]! += scores[first + j]! + scores[second + j]! + scores[third + j]! + scores[fourth + j]!;
        }
      }
      for (; row < rows; row++) {
        const source = (head * rows + row) * seqLen;
        for (let j = 0; j < prefixLength; j++) accumulator[j]! += scores[source + j]!;
      }
    }
    const target = output * prefixLength;
    for (let j = 0; j < prefixLength; j++) means[target + j] = accumulator[j]! * scale;
  }
  return means;
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
      const { queryHeadCount, kvHeadCount } = observation;
      const means = windowMeans(observation, windowSize, prefixLength, groupReduction);
      const reduced =
        groupReduction === 'mean'
          ? means
          : reduceGroups(means, queryHeadCount, kvHeadCount, prefixLength, prefixLength, groupReduction);
      return pool1d(reduced, kvHeadCount, prefixLength, kernelSize, pooling);
    },
  };
}
