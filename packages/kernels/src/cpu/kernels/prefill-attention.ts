import { roundToDType } from '../../half-precision.js';
import type { CpuKernel } from '../cpu-kernel.js';

/**
 * `prefill-attention` on the CPU: causal GQA softmax attention over one prompt, one (query head,
 * query token) at a time with f64 scores (four keys and values per inner pass), also writing the
 * observation-window probabilities (or their column sums) and, when asked, each key's attention summed over
 * all queries. With `kvRounding`, K and V are rounded to that 16-bit type first.
 */
export const prefillAttentionKernel: CpuKernel<'prefill-attention'> = {
  name: 'prefill-attention',
  run(args, context) {
    const { tokenCount, queryHeadCount, kvHeadCount, headDim, windowSize, scale } = args;
    const query = context.f32(args.query);
    // kvRounding: the K and V a 16-bit pool will hold, for every product below
    const kvOf = (buffer: typeof args.key, slot: number): Float32Array => {
      const values = context.f32(buffer);
      const { kvRounding } = args;
      if (!kvRounding) return values;
      const rounded = context.scratchF32(slot, tokenCount * kvHeadCount * headDim);
      for (let i = 0; i < tokenCount * kvHeadCount * headDim; i++) rounded[i] = roundToDType(kvRounding, values[i]!);
      return rounded;
    };
    const key = kvOf(args.key, 0);
    const value = kvOf(args.value, 1);
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
          const w0 = scores[k]!;
          const w1 = scores[k + 1]!;
          const w2 = scores[k + 2]!;
          const w3 = scores[k + 3]!;
          for (let d = 0; d < headDim; d++) {
            accumulator[d] =
              accumulator[d]! + w0 * value[v0 + d]! + w1 * value[v1 + d]! + w2 * value[v2 + d]! + w3 * value[v3 + d]!;
          }
        }
        for (; k < visible; k++) {
          const valueBase = k * kvStride + kvBase;
          const weight = scores[k]!;
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
