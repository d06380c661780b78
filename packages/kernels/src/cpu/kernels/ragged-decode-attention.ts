import { BackendError } from '@fairkv/core';
import { decodeHalf } from '../../half-precision.js';
import { DECODE_PAIR_FIELDS } from '../../kv-layout.js';
import type { CpuKernel } from '../cpu-kernel.js';
import { resolveBlock } from '../kv-block-lookup.js';
import type { StoredArray } from '../stored-array.js';
import { dot, scaledAdd } from '../vector-math.js';

/**
 * `ragged-decode-attention` on the CPU: for each listed (request, kv head) pair, one pass over its
 * blocks computes the scores of all `groupSize` query heads (each K row is read once per group, as
 * GQA intends), then a second pass accumulates V. Scores and sums are f64. f16/bf16 pools are
 * decoded one block at a time into a scratch tile.
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
    const queryHeadCount = kvHeadCount * groupSize;
    const blockElements = 2 * blockSize * headDim;
    const tile = context.scratchF32(0, blockElements);
    const accumulator = context.scratchF64(1, groupSize * headDim);
    const maxima = context.scratchF64(2, groupSize);
    const seen = new Set<number>();
    for (let pair = 0; pair < pairCount; pair++) {
      const base = pair * DECODE_PAIR_FIELDS;
      const queryRow = pairs[base]!;
      const kvHead = pairs[base + 1]!;
      const kvLength = pairs[base + 2]!;
      const tableOffset = pairs[base + 3]!;
      const pairKey = queryRow * kvHeadCount + kvHead;
      if (queryRow < 0 || queryRow >= rowCount || kvHead < 0 || kvHead >= kvHeadCount || kvLength < 0) {
        throw new BackendError(
          `ragged-decode-attention: pairs[${pair}] = [${queryRow}, ${kvHead}, ${kvLength}, ${tableOffset}] needs queryRow in [0, ${rowCount}), kvHead in [0, ${kvHeadCount}) and kvLength >= 0`,
        );
      }
      if (seen.has(pairKey)) {
        throw new BackendError(
          `ragged-decode-attention: pairs[${pair}] repeats (queryRow ${queryRow}, kvHead ${kvHead})`,
        );
      }
      seen.add(pairKey);
      const blocksUsed = Math.ceil(kvLength / blockSize);
      for (let blockIndex = 0; blockIndex < blocksUsed; blockIndex++) {
        resolveBlock(
          'ragged-decode-attention',
          blockTable,
          args,
          tableOffset,
          blockIndex * blockSize,
          `pairs[${pair}]`,
        );
      }
      const queryBase = (queryRow * queryHeadCount + kvHead * groupSize) * headDim;
      const scores = context.scratchF64(3, groupSize * Math.max(1, kvLength));
      maxima.fill(Number.NEGATIVE_INFINITY, 0, groupSize);
      // pass 1: scores of every query head of the group, one K row at a time
      for (let blockIndex = 0; blockIndex < blocksUsed; blockIndex++) {
        const firstToken = blockIndex * blockSize;
        const tokensHere = Math.min(blockSize, kvLength - firstToken);
        const [data, blockBase] = blockView(pool, blockTable[tableOffset + blockIndex]!, blockElements, tile);
        for (let slot = 0; slot < tokensHere; slot++) {
          const keyBase = blockBase + slot * headDim;
          for (let g = 0; g < groupSize; g++) {
            const score = dot(query, queryBase + g * headDim, data, keyBase, headDim) * scale;
            scores[g * kvLength + firstToken + slot] = score;
            if (score > maxima[g]!) maxima[g] = score;
          }
        }
      }
      // softmax per query head
      for (let g = 0; g < groupSize; g++) {
        const maximum = maxima[g]!;
        const row = g * kvLength;
        let total = 0;
        for (let token = 0; token < kvLength; token++) {
          const weight = Math.exp(scores[row + token]! - maximum);
          scores[row + token] = weight;
          total += weight;
        }
        const inverse = 1 / total;
        for (let token = 0; token < kvLength; token++) scores[row + token] = scores[row + token]! * inverse;
      }
      // pass 2: probability-weighted sum of V rows
      accumulator.fill(0, 0, groupSize * headDim);
      for (let blockIndex = 0; blockIndex < blocksUsed; blockIndex++) {
        const firstToken = blockIndex * blockSize;
        const tokensHere = Math.min(blockSize, kvLength - firstToken);
        const [data, blockBase] = blockView(pool, blockTable[tableOffset + blockIndex]!, blockElements, tile);
        for (let slot = 0; slot < tokensHere; slot++) {
          const valueBase = blockBase + (blockSize + slot) * headDim;
          for (let g = 0; g < groupSize; g++) {
            scaledAdd(scores[g * kvLength + firstToken + slot]!, data, valueBase, accumulator, g * headDim, headDim);
          }
        }
      }
      for (let i = 0; i < groupSize * headDim; i++) output[queryBase + i] = accumulator[i]!;
    }
  },
};

/** The f32 array holding block `block` and the element where it starts (decoding f16/bf16 into `tile`). */
function blockView(
  pool: StoredArray,
  block: number,
  blockElements: number,
  tile: Float32Array,
): [Float32Array, number] {
  if (pool.dtype === 'f32') return [pool.data, block * blockElements];
  decodeHalf(pool.dtype, pool.data, block * blockElements, tile, 0, blockElements);
  return [tile, 0];
}
