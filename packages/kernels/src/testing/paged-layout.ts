/**
 * Random paged KV layouts for the conformance suite: sequences get shuffled, non-contiguous blocks,
 * table regions at random offsets with garbage between them, and spare blocks, so a kernel that
 * assumes contiguity or reads past a sequence's length fails.
 *
 * @packageDocumentation
 */
import { kvBlocksFor } from '../kv-layout.js';
import type { Random } from './random.js';

/** Garbage written into block-table gaps (never a valid block id). */
export const TABLE_GARBAGE = -7;

/** A paged layout of some sequences in a pool. */
export interface PagedLayout {
  blockCount: number;
  blockSize: number;
  /** Flat block table (gaps hold {@link TABLE_GARBAGE}). */
  blockTable: Int32Array;
  /** Table offset of each sequence. */
  tableOffsets: number[];
  /** Block ids of each sequence, in token order. */
  blocks: number[][];
}

/**
 * Lays out sequences of the given token capacities (0 allowed) in a pool with `spareBlocks` unused
 * blocks. Block ids are a random permutation; table regions come in random order with random gaps.
 */
export function randomPagedLayout(
  random: Random,
  blockSize: number,
  capacities: readonly number[],
  spareBlocks: number,
): PagedLayout {
  const counts = capacities.map((capacity) => kvBlocksFor(capacity, blockSize));
  const used = counts.reduce((a, b) => a + b, 0);
  const blockCount = Math.max(1, used + spareBlocks);
  const ids = random.shuffle(Array.from({ length: blockCount }, (_, i) => i));
  let next = 0;
  const blocks = counts.map((count) => {
    const start = next;
    next += count;
    return ids.slice(start, next);
  });
  const table: number[] = [];
  const tableOffsets = new Array<number>(capacities.length);
  for (const sequence of random.shuffle(capacities.map((_, i) => i))) {
    const gap = random.integer(0, 2);
    for (let g = 0; g < gap; g++) table.push(TABLE_GARBAGE);
    tableOffsets[sequence] = table.length;
    table.push(...blocks[sequence]!);
  }
  table.push(TABLE_GARBAGE);
  return { blockCount, blockSize, blockTable: Int32Array.from(table), tableOffsets, blocks };
}

/** Element offset of K (or V when `value`) of token `token` of sequence `sequence`. */
export function tokenOffset(
  layout: PagedLayout,
  headDim: number,
  sequence: number,
  token: number,
  value = false,
): number {
  const block = layout.blocks[sequence]![Math.floor(token / layout.blockSize)]!;
  return (block * 2 * layout.blockSize + (value ? layout.blockSize : 0) + (token % layout.blockSize)) * headDim;
}
