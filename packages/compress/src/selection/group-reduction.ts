/**
 * How the scores of a kv head's query heads are combined under grouped-query attention. `mean` is what
 * Ada-KV's `gqa_support` (`attn_weights_mean.view(bsz, kv_heads, groups, -1).mean(dim=-2)`) and kvpress's
 * SnapKVPress do; `max` keeps a token any query head of the group needs (Ada-KV's later `gqa_func` option).
 */
export type GroupReduction = 'mean' | 'max';

/**
 * Reduces per-query-head rows to per-kv-head rows: `input` holds `queryHeadCount` rows of which the first
 * `length` values are read (rows `rowStride` apart); query head `q` belongs to kv head `floor(q / group)`
 * (Hugging Face `repeat_kv` layout). Returns `[kvHeadCount][length]`.
 */
export function reduceGroups(
  input: Float32Array,
  queryHeadCount: number,
  kvHeadCount: number,
  length: number,
  rowStride: number,
  reduction: GroupReduction,
): Float32Array {
  const group = queryHeadCount / kvHeadCount;
  const output = new Float32Array(kvHeadCount * length);
  for (let kvHead = 0; kvHead < kvHeadCount; kvHead++) {
    const target = kvHead * length;
    for (let member = 0; member < group; member++) {
      const source = (kvHead * group + member) * rowStride;
      if (member === 0) {
        for (let j = 0; j < length; j++) output[target + j] = input[source + j]!;
      } else if (reduction === 'max') {
        for (let j = 0; j < length; j++) {
          const value = input[source + j]!;
          if (value > output[target + j]!) output[target + j] = value;
        }
      } else {
        for (let j = 0; j < length; j++) output[target + j]! += input[source + j]!;
      }
    }
    if (reduction === 'mean' && group > 1) {
      for (let j = 0; j < length; j++) output[target + j]! /= group;
    }
  }
  return output;
}
