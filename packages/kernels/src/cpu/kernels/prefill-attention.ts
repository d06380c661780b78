import { roundToDType } from '../../half-precision.js';
import type { CpuKernel } from '../cpu-kernel.js';

/**
 * `prefill-attention` on the CPU: causal GQA softmax attention over one prompt, one (query head,
 * query token) at a time with f64 scores (four keys and values per inner pass), also writing the
 * observation-window probabilities (or their column sums) and, when asked, each key's attention summed over
 * all queries. With `kvRounding`, K and V are rounded to that 16-bit type first; with `productRounding`,
 * Q, K and V are, and each normalised probability is rounded before it multiplies V.
 */
export const prefillAttentionKernel: CpuKernel<'prefill-attention'> = {
  name: 'prefill-attention',
  run(args, context) {
    const { tokenCount, queryHeadCount, kvHeadCount, headDim, windowSize, scale } = args;
    // kvRounding: the K and V a 16-bit pool will hold, for every product below; productRounding: Q too
    const { productRounding } = args;
    const kvRounding = args.kvRounding ?? productRounding;
    const roundedOf = (buffer: typeof args.key, heads: number, rounding: typeof kvRounding, slot: number) => {
      const values = context.f32(buffer);
      if (!rounding) return values;
      const rounded = context.scratchF32(slot, tokenCount * heads * headDim);
      for (let i = 0; i < tokenCount * heads * headDim; i++) rounded[i] = roundToDType(rounding, values[i]!);
      return rounded;
    };
    const query = roundedOf(args.query, queryHeadCount, productRounding, 2);
    const key = roundedOf(args.key, kvHeadCount, kvRounding, 0);
    const value = roundedOf(args.value, kvHeadCount, kvRounding, 1);
    const output = context.f32(args.output);
    const windowScores = windowSize > 0 && args.windowScores ? context.f32(args.windowScores) : undefined;
    const windowScoreSums = windowSize > 0 && args.windowScoreSums ? context.f32(args.windowScoreSums) : undefined;
    const accumulatedScores = args.accumulatedScores ? context.f32(args.accumulatedScores) : undefined;
    const columnSums = accumulatedScores ? context.scratchF64(2, tokenCount) : undefined;
    const windowSums = windowScoreSums ? context.scratchF64(3, tokenCount) : undefined;
    const groupSize = queryHeadCount / kvHeadCount;
    const scores = context.scratchF64(0, tokenCount);
    const accumulator = context.scratchF64(1, headDim);
    const kvStride = kvHeadCount * headDim;
    const windowStart = tokenCount - windowSize;
    for (let queryHead = 0; queryHead < queryHeadCount; queryHead++) {
      const kvBase = Math.floor(queryHead / groupSize) * headDim;
      columnSums?.fill(0, 0, tokenCount);
      windowSums?.fill(0, 0, tokenCount);
      for (let token = 0; token < tokenCount; token++) {
        const queryBase = (token * queryHeadCount + queryHead) * headDim;
        let maximum = Number.NEGATIVE_INFINITY;
        const visible = token + 1;
        let k = 0;
        // four keys at a time: each query element is loaded once per four K rows
        for (; k + 4 <= visible; k += 4) {
          const k0 = k * kvStride + kvBase;
          const k1 = k0 + kvStride;
          const k2 = k1 + kvStride;
          const k3 = k2 + kvStride;
          let s0 = 0;
          let s1 = 0;
          let s2 = 0;
          let s3 = 0;
          for (let d = 0; d < headDim; d++) {
            const x = query[queryBase + d]!;
            s0 += x * key[k0 + d]!;
            s1 += x * key[k1 + d]!;
            s2 += x * key[k2 + d]!;
            s3 += x * key[k3 + d]!;
          }
          scores[k] = s0 * scale;
          scores[k + 1] = s1 * scale;
          scores[k + 2] = s2 * scale;
          scores[k + 3] = s3 * scale;
          maximum = Math.max(maximum, s0 * scale, s1 * scale, s2 * scale, s3 * scale);
        }
        for (; k < visible; k++) {
          const keyBase = k * kvStride + kvBase;
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += query[queryBase + d]! * key[keyBase + d]!;
          scores[k] = dot * scale;
          maximum = Math.max(maximum, dot * scale);
        }
        let total = 0;
        for (k = 0; k < visible; k++) {
          const weight = Math.exp(scores[k]! - maximum);
          scores[k] = weight;
          total += weight;
        }
        for (k = 0; k < visible; k++) scores[k] = scores[k]! / total;
        // the probabilities as V's products take them (window and column sums keep them unrounded)
        const weights = productRounding ? context.scratchF64(4, tokenCount) : scores;
        if (productRounding) for (k = 0; k < visible; k++) weights[k] = roundToDType(productRounding, scores[k]!);
        if (columnSums) for (k = 0; k < visible; k++) columnSums[k] = columnSums[k]! + scores[k]!;
        if (windowSums && token >= windowStart)
          for (k = 0; k < visible; k++) windowSums[k] = windowSums[k]! + scores[k]!;
        accumulator.fill(0, 0, headDim);
        // four value rows at a time: each accumulator element is loaded and stored once per four
        for (k = 0; k + 4 <= visible; k += 4) {
          const v0 = k * kvStride + kvBase;
          const v1 = v0 + kvStride;
          const v2 = v1 + kvStride;
          const v3 = v2 + kvStride;
          const w0 = weights[k]!;
          const w1 = weights[k + 1]!;
          const w2 = weights[k + 2]!;
          const w3 = weights[k + 3]!;
          for (let d = 0; d < headDim; d++) {
            accumulator[d] =
              accumulator[d]! + w0 * value[v0 + d]! + w1 * value[v1 + d]! + w2 * value[v2 + d]! + w3 * value[v3 + d]!;
          }
        }
        for (; k < visible; k++) {
          const valueBase = k * kvStride + kvBase;
          const weight = weights[k]!;
          for (let d = 0; d < headDim; d++) accumulator[d] = accumulator[d]! + weight * value[valueBase + d]!;
        }
        for (let d = 0; d < headDim; d++) output[queryBase + d] = accumulator[d]!;
        if (windowScores !== undefined && token >= windowStart) {
          const rowBase = (queryHead * windowSize + token - windowStart) * tokenCount;
          for (let k = 0; k <= token; k++) windowScores[rowBase + k] = scores[k]!;
          windowScores.fill(0, rowBase + token + 1, rowBase + tokenCount);
        }
      }
      if (accumulatedScores && columnSums)
        for (let k = 0; k < tokenCount; k++) accumulatedScores[queryHead * tokenCount + k] = columnSums[k]!;
      if (windowScoreSums && windowSums)
        for (let k = 0; k < tokenCount; k++) windowScoreSums[queryHead * tokenCount + k] = windowSums[k]!;
    }
  },
};
