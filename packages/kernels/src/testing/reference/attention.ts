/**
 * Float64 references of the attention kernels, on dense per-sequence K/V (the paged layout is
 * resolved by the caller): softmax attention spelled out.
 *
 * @packageDocumentation
 */

type Values = ArrayLike<number>;

/** Softmax of `scores` in place; returns it. */
function softmax(scores: Float64Array): Float64Array {
  let maximum = Number.NEGATIVE_INFINITY;
  for (const s of scores) maximum = Math.max(maximum, s);
  let total = 0;
  for (let i = 0; i < scores.length; i++) {
    scores[i] = Math.exp(scores[i]! - maximum);
    total += scores[i]!;
  }
  for (let i = 0; i < scores.length; i++) scores[i] = scores[i]! / total;
  return scores;
}

/**
 * One query vector attending over `length` keys/values, each `headDim` long, at element offsets
 * `keyAt(t)` / `valueAt(t)` of `keys` / `values`; writes into `output` at `outputOffset`.
 */
export function referenceAttend(
  query: Values,
  queryOffset: number,
  keys: Values,
  values: Values,
  keyAt: (token: number) => number,
  valueAt: (token: number) => number,
  length: number,
  headDim: number,
  scale: number,
  output: Float64Array,
  outputOffset: number,
): Float64Array {
  const scores = new Float64Array(length);
  for (let t = 0; t < length; t++) {
    let dot = 0;
    for (let d = 0; d < headDim; d++) dot += query[queryOffset + d]! * keys[keyAt(t) + d]!;
    scores[t] = dot * scale;
  }
  softmax(scores);
  for (let d = 0; d < headDim; d++) {
    let sum = 0;
    for (let t = 0; t < length; t++) sum += scores[t]! * values[valueAt(t) + d]!;
    output[outputOffset + d] = sum;
  }
  return scores;
}

/** Causal GQA prefill attention and the observation-window probabilities. */
export function referencePrefillAttention(
  query: Values,
  key: Values,
  value: Values,
  tokenCount: number,
  queryHeadCount: number,
  kvHeadCount: number,
  headDim: number,
  windowSize: number,
  scale: number,
): {
  output: Float64Array;
  windowScores: Float64Array;
  windowScoreSums: Float64Array;
  accumulatedScores: Float64Array;
} {
  const output = new Float64Array(tokenCount * queryHeadCount * headDim);
  const windowScores = new Float64Array(queryHeadCount * windowSize * tokenCount);
  const windowScoreSums = new Float64Array(queryHeadCount * tokenCount);
  const accumulatedScores = new Float64Array(queryHeadCount * tokenCount);
  const group = queryHeadCount / kvHeadCount;
  for (let q = 0; q < queryHeadCount; q++) {
    const kv = Math.floor(q / group);
    const at = (t: number) => (t * kvHeadCount + kv) * headDim;
    for (let t = 0; t < tokenCount; t++) {
      const offset = (t * queryHeadCount + q) * headDim;
      const probabilities = referenceAttend(query, offset, key, value, at, at, t + 1, headDim, scale, output, offset);
      const w = t - (tokenCount - windowSize);
      if (w >= 0) windowScores.set(probabilities, (q * windowSize + w) * tokenCount);
      if (w >= 0) for (let k = 0; k <= t; k++) windowScoreSums[q * tokenCount + k]! += probabilities[k]!;
      for (let k = 0; k <= t; k++) accumulatedScores[q * tokenCount + k]! += probabilities[k]!;
    }
  }
  return { output, windowScores, windowScoreSums, accumulatedScores };
}
