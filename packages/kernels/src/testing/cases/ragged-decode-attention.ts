import type { DType } from '@fairkv/core';
import { kvBlockElementCount } from '../../kv-layout.js';
import { type ConformanceCase, product, roundedCopy } from '../conformance-case.js';
import { randomPagedLayout, tokenOffset } from '../paged-layout.js';
import { referenceAttend } from '../reference/attention.js';

/**
 * `ragged-decode-attention` cases: batches 1 and 7, GQA groups 1, 2 and 8, head dims 8, 64 and 128,
 * every (request, kv head) pair with its own length (0, 1 or up to 70), blocks of 1, 5 or 16 shuffled
 * across the pool, and only a random subset of pairs listed: listed pairs must match float64, unlisted
 * rows must stay poisoned, and poisoned (NaN) slots past each length must never be read. Two more
 * cases take lengths up to 2500 and groups of 8 and 16 (two query-head subgroups per kv head), so a
 * backend that splits long pairs over several workers and merges the parts is checked on real splits;
 * twelve like them in f32 (head dims 64 and 128) take blocks of 8, 24 and 5 tokens each, so a backend
 * that streams f32 K/V in 8-token stages meets blocks of exactly one stage, of several, and of none.
 * The last lists 1,500 short pairs, all of them: more than a per-block work plan in on-chip memory
 * holds, so a backend that plans differently for long pair lists is checked there too.
 */
interface Shape {
  rows: number;
  group: number;
  headDim: number;
  dtype: DType;
  longest: number;
  /** kv heads per request (default: 1 to 3 at random) */
  kvHeads?: number;
  /** list every pair (default: a random subset) */
  listAll?: boolean;
  /** pool block sizes to pick from (default 1, 5 and 16) */
  blockSizes?: number[];
}
const shapes: Shape[] = [
  ...product({ rows: [1, 7], group: [1, 2, 8], headDim: [8, 64, 128], dtype: ['f32' as const], longest: [70] }),
  ...product({ rows: [7], group: [2, 8], headDim: [64, 128], dtype: ['f16' as const, 'bf16' as const], longest: [70] }),
  ...product({ rows: [3], group: [8, 16], headDim: [128], dtype: ['bf16' as const], longest: [2500] }),
  ...product({
    rows: [3],
    group: [8, 16],
    headDim: [64, 128],
    dtype: ['f32' as const],
    longest: [2500],
    blockSizes: [[8], [24], [5]],
  }),
  { rows: 500, group: 2, headDim: 128, dtype: 'bf16', longest: 8, kvHeads: 3, listAll: true, blockSizes: [1, 5] },
];

export const raggedDecodeAttentionCases: ConformanceCase[] = shapes.map(
  ({ rows, group, headDim, dtype, longest, kvHeads, listAll, blockSizes }) => ({
    kernel: 'ragged-decode-attention',
    name: `rows=${rows} group=${group} kvHeads=${kvHeads ?? '1..3'} headDim=${headDim} lengths=0|1|2..${longest} ${dtype}${listAll ? ' all listed' : ''}${blockSizes?.length === 1 ? ` blocks of ${blockSizes[0]}` : ''}`,
    storageDType: dtype,
    headDim,
    async execute(context, random, tolerance) {
      const rowCount = rows;
      const kvHeadCount = kvHeads ?? random.integer(1, 3);
      const queryHeadCount = kvHeadCount * group;
      const blockSize = random.pick(blockSizes ?? [1, 5, 16]);
      const pairCountAll = rowCount * kvHeadCount;
      const lengths = Array.from({ length: pairCountAll }, () => random.pick([0, 1, random.integer(2, longest)]));
      const layout = randomPagedLayout(random, blockSize, lengths, random.integer(0, 3));
      const blockElements = kvBlockElementCount(blockSize, headDim);
      // real K/V for every token, NaN in slots past each length and in spare blocks
      const poolValues = new Float32Array(layout.blockCount * blockElements).fill(Number.NaN);
      lengths.forEach((length, sequence) => {
        for (let t = 0; t < length; t++) {
          for (const isValue of [false, true]) {
            poolValues.set(random.floats(headDim, -2, 2), tokenOffset(layout, headDim, sequence, t, isValue));
          }
        }
      });
      const listed = random
        .shuffle(Array.from({ length: pairCountAll }, (_, i) => i))
        .slice(0, listAll ? pairCountAll : random.integer(1, pairCountAll));
      const pairValues = new Int32Array(listed.length * 4);
      listed.forEach((sequence, p) => {
        pairValues.set(
          [
            Math.floor(sequence / kvHeadCount),
            sequence % kvHeadCount,
            lengths[sequence]!,
            layout.tableOffsets[sequence]!,
          ],
          p * 4,
        );
      });
      const queryValues = random.floats(rowCount * queryHeadCount * headDim, -2, 2);
      const scale = 1 / Math.sqrt(headDim);
      const output = context.output('f32', rowCount * queryHeadCount * headDim, 'output');
      context.backend.run('ragged-decode-attention', {
        pool: context.input(dtype, poolValues, 'pool'),
        blockTable: context.input('i32', layout.blockTable, 'blockTable'),
        blockCount: layout.blockCount,
        blockSize,
        headDim,
        blockTableLength: layout.blockTable.length,
        query: context.input('f32', queryValues, 'query'),
        output,
        pairs: context.input('i32', pairValues, 'pairs'),
        rowCount,
        kvHeadCount,
        groupSize: group,
        pairCount: listed.length,
        scale,
      });
      const actual = await context.read(output);
      const pool = roundedCopy(dtype, poolValues);
      const got: number[] = [];
      const want: number[] = [];
      const expected = new Float64Array(group * headDim);
      for (const sequence of listed) {
        const row = Math.floor(sequence / kvHeadCount);
        const kvHead = sequence % kvHeadCount;
        const base = (row * queryHeadCount + kvHead * group) * headDim;
        for (let g = 0; g < group; g++) {
          if (lengths[sequence] === 0) expected.fill(0, g * headDim, (g + 1) * headDim);
          else {
            const keyAt = (t: number) => tokenOffset(layout, headDim, sequence, t);
            const valueAt = (t: number) => tokenOffset(layout, headDim, sequence, t, true);
            referenceAttend(
              queryValues,
              base + g * headDim,
              pool,
              pool,
              keyAt,
              valueAt,
              lengths[sequence]!,
              headDim,
              scale,
              expected,
              g * headDim,
            );
          }
        }
        got.push(...actual.subarray(base, base + group * headDim));
        want.push(...expected);
      }
      context.expectMatch(
        `output of ${listed.length} listed pairs (lengths ${listed.map((s) => lengths[s]).join(',')})`,
        got,
        want,
        tolerance,
      );
      const listedSet = new Set(listed);
      for (let sequence = 0; sequence < pairCountAll; sequence++) {
        if (listedSet.has(sequence)) continue;
        const base = (Math.floor(sequence / kvHeadCount) * queryHeadCount + (sequence % kvHeadCount) * group) * headDim;
        context.expectPoisoned(`output of unlisted pair ${sequence}`, actual, base, base + group * headDim);
      }
      context.expectPoisoned('output padding', actual, rowCount * queryHeadCount * headDim, actual.length);
    },
  }),
);
