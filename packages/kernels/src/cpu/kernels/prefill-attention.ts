import type { CpuKernel } from '../cpu-kernel.js';

/**
 * `prefill-attention` on the CPU: causal GQA softmax attention over one prompt, one (query head,
 * query token) at a time with f64 scores, also writing the observation-window probabilities.
 */
export const prefillAttentionKernel: CpuKernel<'prefill-attention'> = {
  name: 'prefill-attention',
  run(args, context) {
    const { tokenCount, queryHeadCount, kvHeadCount, headDim, windowSize, scale } = args;
    const query = context.f32(args.query);
    const key = context.f32(args.key);
    const value = context.f32(args.value);
    const output = context.f32(args.output);
    const windowScores = windowSize > 0 ? context.f32(args.windowScores!) : undefined;
    const groupSize = queryHeadCount / kvHeadCount;
    const scores = context.scratchF64(0, tokenCount);
    const accumulator = context.scratchF64(1, headDim);
    const kvStride = kvHeadCount * headDim;
    const windowStart = tokenCount - windowSize;
    for (let queryHead = 0; queryHead < queryHeadCount; queryHead++) {
      const kvBase = Math.floor(queryHead / groupSize) * headDim;
      for (let token = 0; token < tokenCount; token++) {
        const queryBase = (token * queryHeadCount + queryHead) * headDim;
        let maximum = Number.NEGATIVE_INFINITY;
        for (let k = 0; k <= token; k++) {
          const keyBase = k * kvStride + kvBase;
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += query[queryBase + d]! * key[keyBase + d]!;
          const score = dot * scale;
          scores[k] = score;
          if (score > maximum) maximum = score;
        }
        let total = 0;
        for (let k = 0; k <= token; k++) {
          const weight = Math.exp(scores[k]! - maximum);
          scores[k] = weight;
          total += weight;
        }
        accumulator.fill(0, 0, headDim);
        for (let k = 0; k <= token; k++) {
          const probability = scores[k]! / total;
          scores[k] = probability;
          const valueBase = k * kvStride + kvBase;
          for (let d = 0; d < headDim; d++) accumulator[d] = accumulator[d]! + probability * value[valueBase + d]!;
        }
        for (let d = 0; d < headDim; d++) output[queryBase + d] = accumulator[d]!;
        if (windowScores !== undefined && token >= windowStart) {
          const rowBase = (queryHead * windowSize + token - windowStart) * tokenCount;
          for (let k = 0; k <= token; k++) windowScores[rowBase + k] = scores[k]!;
          windowScores.fill(0, rowBase + token + 1, rowBase + tokenCount);
        }
      }
    }
  },
};
