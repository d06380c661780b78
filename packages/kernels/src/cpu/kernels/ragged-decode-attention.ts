import { BackendError } from '@fairkv/core';
import { decodeHalf, type HalfDType } from '../../half-precision.js';
import { DECODE_PAIR_FIELDS } from '../../kv-layout.js';
import type { CpuKernel } from '../cpu-kernel.js';
import { resolveBlock } from '../kv-block-lookup.js';

/**
 * `ragged-decode-attention` on the CPU: for each listed (request, kv head) pair, one pass over its
 * blocks computes the scores of all `groupSize` query heads (each K row is read once per group, as
 * GQA intends), then a second pass accumulates V. Scores and sums are f64.
 */
export const raggedDecodeAttentionKernel: CpuKernel<'ragged-decode-attention'> = {
  name: 'ragged-decode-attention',
  run(args, context) {
    const { rowCount, kvHeadCount, groupSize, headDim, blockSize, pairCount, scale } = args;
    const query = context.f32(args.query);
    const output = context.f32(args.output);
    const pairs = context.i32(args.pairs);
    const blockTable = context.i32(args.blockTable);
    const pool = context.stored(args.pool);
    const poolF32 = pool.dtype === 'f32' ? pool.data : undefined;
    const queryHeadCount = kvHeadCount * groupSize;
    const rowScratch = context.scratchF32(0, headDim);
    const accumulator = context.scratchF64(1, groupSize * headDim);
    const maxima = context.scratchF64(2, groupSize);
    const totals = context.scratchF64(3, groupSize);
    const seen = new Set<number>();
    for (let pair = 0; pair < pairCount; pair++) {
      const base = pair * DECODE_PAIR_FIELDS;
      const queryRow = pairs[base]!;
      const kvHead = pairs[base + 1]!;
      const kvLength = pairs[base + 2]!;
      const tableOffset = pairs[base + 3]!;
      if (queryRow < 0 || queryRow >= rowCount || kvHead < 0 || kvHead >= kvHeadCount || kvLength < 0) {
        throw new BackendError(
          `ragged-decode-attention: pairs[${pair}] = [${queryRow}, ${kvHead}, ${kvLength}, ${tableOffset}] needs queryRow in [0, ${rowCount}), kvHead in [0, ${kvHeadCount}) and kvLength >= 0`,
        );
      }
      const pairKey = queryRow * kvHeadCount + kvHead;
      if (seen.has(pairKey)) {
        throw new BackendError(
          `ragged-decode-attention: pairs[${pair}] repeats (queryRow ${queryRow}, kvHead ${kvHead})`,
        );
      }
      seen.add(pairKey);
      const queryBase = (queryRow * queryHeadCount + kvHead * groupSize) * headDim;
      const scores = context.scratchF64(4, groupSize * Math.max(1, kvLength));
      maxima.fill(Number.NEGATIVE_INFINITY, 0, groupSize);
      const blocksUsed = Math.ceil(kvLength / blockSize);
      for (let blockIndex = 0; blockIndex < blocksUsed; blockIndex++) {
        const firstToken = blockIndex * blockSize;
        const block = resolveBlock(
          'ragged-decode-attention',
          blockTable,
          args,
          tableOffset,
          firstToken,
          `pairs[${pair}]`,
        );
        const tokensHere = Math.min(blockSize, kvLength - firstToken);
        for (let slot = 0; slot < tokensHere; slot++) {
          let keyData = poolF32;
          let keyBase = (block * 2 * blockSize + slot) * headDim;
          if (keyData === undefined) {
            decodeHalf(pool.dtype as HalfDType, pool.data as Uint16Array, keyBase, rowScratch, 0, headDim);
            keyData = rowScratch;
            keyBase = 0;
          }
          const token = firstToken + slot;
          for (let g = 0; g < groupSize; g++) {
            const q = queryBase + g * headDim;
            let dot = 0;
            for (let d = 0; d < headDim; d++) dot += query[q + d]! * keyData[keyBase + d]!;
            const score = dot * scale;
            scores[g * kvLength + token] = score;
            if (score > maxima[g]!) maxima[g] = score;
          }
        }
      }
      totals.fill(0, 0, groupSize);
      for (let g = 0; g < groupSize; g++) {
        const maximum = maxima[g]!;
        for (let token = 0; token < kvLength; token++) {
          const weight = Math.exp(scores[g * kvLength + token]! - maximum);
          scores[g * kvLength + token] = weight;
          totals[g] = totals[g]! + weight;
        }
        for (let token = 0; token < kvLength; token++) {
          scores[g * kvLength + token] = scores[g * kvLength + token]! / totals[g]!;
        }
      }
      accumulator.fill(0, 0, groupSize * headDim);
      for (let blockIndex = 0; blockIndex < blocksUsed; blockIndex++) {
        const firstToken = blockIndex * blockSize;
        const block = blockTable[tableOffset + blockIndex]!;
        const tokensHere = Math.min(blockSize, kvLength - firstToken);
        for (let slot = 0; slot < tokensHere; slot++) {
          let valueData = poolF32;
          let valueBase = (block * 2 * blockSize + blockSize + slot) * headDim;
          if (valueData === undefined) {
            decodeHalf(pool.dtype as HalfDType, pool.data as Uint16Array, valueBase, rowScratch, 0, headDim);
            valueData = rowScratch;
            valueBase = 0;
          }
          const token = firstToken + slot;
          for (let g = 0; g < groupSize; g++) {
            const weight = scores[g * kvLength + token]!;
            const a = g * headDim;
            for (let d = 0; d < headDim; d++)
              accumulator[a + d] = accumulator[a + d]! + weight * valueData[valueBase + d]!;
          }
        }
      }
      for (let i = 0; i < groupSize * headDim; i++) output[queryBase + i] = accumulator[i]!;
    }
  },
};
