/**
 * The paged KV cache layout shared by `kv-append`, `kv-compact` and `ragged-decode-attention`
 * (reasons in docs/kv-cache.md). Paged blocks per (request, layer, kv head), after vLLM's
 * PagedAttention (Kwon et al., SOSP 2023) and vllm-kvcompress (Rehg, 2024), with block tables in one
 * flat i32 buffer addressed by per-sequence offsets (the cumulative-offset idea of Ada-KV's flattened
 * cache, Feng et al. 2024, applied to the small table instead of the large data).
 *
 * Pool: one buffer of `blockCount * 2 * blockSize * headDim` elements (dtype f32, f16 or bf16).
 * Block `b` holds the K rows then the V rows of up to `blockSize` tokens of **one** sequence:
 *
 * ```
 * key(b, slot, d)   = pool[b * 2 * blockSize * headDim +             slot * headDim + d]
 * value(b, slot, d) = pool[b * 2 * blockSize * headDim + blockSize * headDim + slot * headDim + d]
 * ```
 *
 * A *sequence* is the KV of one (request, layer, kv head). Token `t` of a sequence whose block list
 * starts at `tableOffset` in the block table lives in block `blockTable[tableOffset + floor(t /
 * blockSize)]`, slot `t % blockSize`. Its blocks need not be contiguous or ordered in the pool.
 *
 * @packageDocumentation
 */

/** Integers per row of the `pairs` buffer of `ragged-decode-attention`. */
export const DECODE_PAIR_FIELDS = 4;
/** Field indices of one decode pair: `[queryRow, kvHead, kvLength, tableOffset]`. */
export const DecodePairField = { queryRow: 0, kvHead: 1, kvLength: 2, tableOffset: 3 } as const;

/** Integers per row of the `entries` buffer of `kv-append`. */
export const KV_APPEND_ENTRY_FIELDS = 4;
/** Field indices of one append entry: `[sourceRow, kvHead, position, tableOffset]`. */
export const KvAppendEntryField = { sourceRow: 0, kvHead: 1, position: 2, tableOffset: 3 } as const;

/** Integers per row of the `sequences` buffer of `kv-compact`. */
export const KV_COMPACT_SEQUENCE_FIELDS = 4;
/**
 * Field indices of one compaction: `[keptOffset, keptCount, sourceTableOffset,
 * destinationTableOffset]` (kept indices are `keptIndices[keptOffset .. keptOffset + keptCount)`).
 */
export const KvCompactSequenceField = {
  keptOffset: 0,
  keptCount: 1,
  sourceTableOffset: 2,
  destinationTableOffset: 3,
} as const;

/** Elements of one pool block (K and V of `blockSize` tokens): `2 * blockSize * headDim`. */
export function kvBlockElementCount(blockSize: number, headDim: number): number {
  return 2 * blockSize * headDim;
}

/** Element offset of K of token slot `slot` in block `block`. */
export function kvKeyOffset(block: number, slot: number, blockSize: number, headDim: number): number {
  return block * 2 * blockSize * headDim + slot * headDim;
}

/** Element offset of V of token slot `slot` in block `block`. */
export function kvValueOffset(block: number, slot: number, blockSize: number, headDim: number): number {
  return block * 2 * blockSize * headDim + (blockSize + slot) * headDim;
}

/** Blocks a sequence of `tokenCount` tokens occupies: `ceil(tokenCount / blockSize)`. */
export function kvBlocksFor(tokenCount: number, blockSize: number): number {
  return Math.ceil(tokenCount / blockSize);
}
