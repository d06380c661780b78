import { BackendError } from '@fairkv/core';
import { f16DecodeTable } from '../../half-precision.js';
import { DECODE_PAIR_FIELDS } from '../../kv-layout.js';
import type { CpuKernel } from '../cpu-kernel.js';
import { resolveBlock } from '../kv-block-lookup.js';
import { WEIGHT_KIND } from './matmul.js';

/**
 * Decode attention for pairs `[pairStart, pairEnd)` of a validated pair list. Per pair, pass 1 reads
 * each K row once and scores all `groupSize` query heads of the group (GQA), a softmax per head,
 * then pass 2 accumulates V rows; scores and sums in f64. f16/bf16 pools (`poolKind` 1/2) are decoded
 * one block at a time into a scratch tile.
 *
 * Self-contained on purpose (no outside references): the CPU thread pool ships its source to worker
 * threads, which run it on other pair ranges of the same shared buffers.
 */
export function attendPairs(
  query: Float32Array,
  output: Float32Array,
  pairs: Int32Array,
  blockTable: Int32Array,
  pool: Float32Array | Uint16Array,
  poolKind: number,
  f16Table: Float32Array | null,
  pairStart: number,
  pairEnd: number,
  kvHeadCount: number,
  groupSize: number,
  headDim: number,
  blockSize: number,
  scale: number,
): void {
  const queryHeadCount = kvHeadCount * groupSize;
  const blockElements = 2 * blockSize * headDim;
  const tile = poolKind === 0 ? null : new Float32Array(blockElements);
  const tileBits = tile === null ? null : new Int32Array(tile.buffer);
  const accumulator = new Float64Array(groupSize * headDim);
  const maxima = new Float64Array(groupSize);
  let scores = new Float64Array(64);
  for (let pair = pairStart; pair < pairEnd; pair++) {
    const queryRow = pairs[pair * 4]!;
    const kvHead = pairs[pair * 4 + 1]!;
    const kvLength = pairs[pair * 4 + 2]!;
    const tableOffset = pairs[pair * 4 + 3]!;
    const queryBase = (queryRow * queryHeadCount + kvHead * groupSize) * headDim;
    if (scores.length < groupSize * kvLength) scores = new Float64Array(groupSize * kvLength * 2);
    const blocksUsed = Math.ceil(kvLength / blockSize);
    maxima.fill(Number.NEGATIVE_INFINITY);
    accumulator.fill(0);
    for (let pass = 0; pass < 2; pass++) {
      for (let blockIndex = 0; blockIndex < blocksUsed; blockIndex++) {
        const firstToken = blockIndex * blockSize;
        const tokensHere = Math.min(blockSize, kvLength - firstToken);
        const blockStart = blockTable[tableOffset + blockIndex]! * blockElements;
        let data: Float32Array;
        let base: number;
        if (tile === null) {
          data = pool as Float32Array;
          base = blockStart;
        } else {
          // decode only the plane this pass reads
          const from = pass === 0 ? 0 : blockSize * headDim;
          const count = tokensHere * headDim;
          if (poolKind === 2) for (let i = 0; i < count; i++) tileBits![from + i] = pool[blockStart + from + i]! << 16;
          else for (let i = 0; i < count; i++) tile[from + i] = f16Table![pool[blockStart + from + i]!]!;
          data = tile;
          base = 0;
        }
        // four tokens at a time: each query element is loaded once per four K rows, and each
        // accumulator element once per four V rows
        for (let g = 0; g < groupSize; g++) {
          const q = queryBase + g * headDim;
          const row = g * kvLength + firstToken;
          const a = g * headDim;
          let slot = 0;
          for (; slot + 4 <= tokensHere; slot += 4) {
            if (pass === 0) {
              const k0 = base + slot * headDim;
              const k1 = k0 + headDim;
              const k2 = k1 + headDim;
              const k3 = k2 + headDim;
              let s0 = 0;
              let s1 = 0;
              let s2 = 0;
              let s3 = 0;
              for (let d = 0; d < headDim; d++) {
                const x = query[q + d]!;
                s0 += x * data[k0 + d]!;
                s1 += x * data[k1 + d]!;
                s2 += x * data[k2 + d]!;
                s3 += x * data[k3 + d]!;
              }
              scores[row + slot] = s0 * scale;
              scores[row + slot + 1] = s1 * scale;
              scores[row + slot + 2] = s2 * scale;
              scores[row + slot + 3] = s3 * scale;
              maxima[g] = Math.max(maxima[g]!, s0 * scale, s1 * scale, s2 * scale, s3 * scale);
            } else {
              const v0 = base + (blockSize + slot) * headDim;
              const v1 = v0 + headDim;
              const v2 = v1 + headDim;
              const v3 = v2 + headDim;
              const w0 = scores[row + slot]!;
              const w1 = scores[row + slot + 1]!;
              const w2 = scores[row + slot + 2]!;
              const w3 = scores[row + slot + 3]!;
              for (let d = 0; d < headDim; d++) {
                accumulator[a + d] =
                  accumulator[a + d]! +
                  w0 * data[v0 + d]! +
                  w1 * data[v1 + d]! +
                  w2 * data[v2 + d]! +
                  w3 * data[v3 + d]!;
              }
            }
          }
          for (; slot < tokensHere; slot++) {
            if (pass === 0) {
              const k = base + slot * headDim;
              let sum = 0;
              for (let d = 0; d < headDim; d++) sum += query[q + d]! * data[k + d]!;
              scores[row + slot] = sum * scale;
              maxima[g] = Math.max(maxima[g]!, sum * scale);
            } else {
              const v = base + (blockSize + slot) * headDim;
              const w = scores[row + slot]!;
              for (let d = 0; d < headDim; d++) accumulator[a + d] = accumulator[a + d]! + w * data[v + d]!;
            }
          }
        }
      }
      if (pass === 0) {
        for (let g = 0; g < groupSize; g++) {
          const row = g * kvLength;
          const maximum = maxima[g]!;
          let total = 0;
          for (let token = 0; token < kvLength; token++) {
            const weight = Math.exp(scores[row + token]! - maximum);
            scores[row + token] = weight;
            total += weight;
          }
          for (let token = 0; token < kvLength; token++) scores[row + token] = scores[row + token]! / total;
        }
      }
    }
    for (let i = 0; i < groupSize * headDim; i++) output[queryBase + i] = accumulator[i]!;
  }
}

/** Below this many K/V element reads (times the group) a decode call stays on the calling thread. */
const PARALLEL_MIN_WORK = 1 << 18;

/**
 * `ragged-decode-attention` on the CPU: validates every pair and block on the calling thread, then
 * runs {@link attendPairs}, split by estimated work into one contiguous pair range per thread when a
 * thread pool is configured and the call is large enough. Listed pairs write disjoint output rows.
 */
export const raggedDecodeAttentionKernel: CpuKernel<'ragged-decode-attention'> = {
  name: 'ragged-decode-attention',
  run(args, context) {
    const { rowCount, kvHeadCount, groupSize, headDim, blockSize, pairCount, scale } = args;
    const pairs = context.i32(args.pairs);
    const blockTable = context.i32(args.blockTable);
    const pool = context.stored(args.pool);
    const seen = new Set<number>();
    const work = new Float64Array(pairCount + 1);
    for (let pair = 0; pair < pairCount; pair++) {
      const base = pair * DECODE_PAIR_FIELDS;
      const [queryRow, kvHead, kvLength, tableOffset] = [
        pairs[base]!,
        pairs[base + 1]!,
        pairs[base + 2]!,
        pairs[base + 3]!,
      ];
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
      for (let token = 0; token < kvLength; token += blockSize) {
        resolveBlock('ragged-decode-attention', blockTable, args, tableOffset, token, `pairs[${pair}]`);
      }
      work[pair + 1] = work[pair]! + (kvLength + 1) * groupSize * headDim;
    }
    const kind = WEIGHT_KIND[pool.dtype];
    const table = pool.dtype === 'f16' ? (context.parallel?.f16Table ?? f16DecodeTable()) : null;
    const query = context.f32(args.query);
    const output = context.f32(args.output);
    const common = [kvHeadCount, groupSize, headDim, blockSize, scale];
    const parallel = context.parallel;
    const total = work[pairCount]!;
    if (parallel === undefined || parallel.size < 2 || pairCount < 2 || total < PARALLEL_MIN_WORK) {
      attendPairs(
        query,
        output,
        pairs,
        blockTable,
        pool.data,
        kind,
        table,
        0,
        pairCount,
        kvHeadCount,
        groupSize,
        headDim,
        blockSize,
        scale,
      );
      return;
    }
    // contiguous pair ranges of about equal work
    const parts: unknown[][] = [];
    let start = 0;
    for (let part = 1; part <= parallel.size && start < pairCount; part++) {
      let end = start + 1;
      while (end < pairCount && work[end]! < (total * part) / parallel.size) end++;
      if (part === parallel.size) end = pairCount;
      parts.push([query, output, pairs, blockTable, pool.data, kind, table, start, end, ...common]);
      start = end;
    }
    parallel.run('attendPairs', parts);
  },
};
