/**
 * The attention weights one kv head owns, as a sharded executor places them on a device
 * (FairKV, arXiv 2502.15804, section 3: a head's Wq, Wk, Wv rows and Wo columns move together,
 * including the query heads of its GQA group).
 *
 * @packageDocumentation
 */
import { type ModelConfig, queryGroupSize } from '@fairkv/core';
import type { ModelWeights } from './model-weights.js';
import { layerWeightName } from './weight-names.js';

/** Row/column ranges of one kv head in a layer's attention matrices. */
export interface KvHeadRanges {
  /** Rows of `attention.wq`: the query heads of the group. */
  queryRows: { first: number; count: number };
  /** Rows of `attention.wk` and `attention.wv`. */
  kvRows: { first: number; count: number };
  /** Columns of `attention.wo` (same range as the query rows). */
  outputColumns: { first: number; count: number };
}

/** Where kv head `kvHead`'s weights sit (query heads `kvHead * group .. (kvHead + 1) * group - 1`). */
export function kvHeadRanges(config: ModelConfig, kvHead: number): KvHeadRanges {
  if (!Number.isInteger(kvHead) || kvHead < 0 || kvHead >= config.kvHeadCount) {
    throw new RangeError(`kv head ${kvHead} is outside 0..${config.kvHeadCount - 1}`);
  }
  const group = queryGroupSize(config);
  const query = { first: kvHead * group * config.headDim, count: group * config.headDim };
  return {
    queryRows: query,
    kvRows: { first: kvHead * config.headDim, count: config.headDim },
    outputColumns: { ...query },
  };
}

/** The attention weights of one kv head of one layer. */
export interface KvHeadWeights {
  /** `[group * headDim, hiddenSize]`. */
  wq: Float32Array;
  /** `[headDim, hiddenSize]`. */
  wk: Float32Array;
  /** `[headDim, hiddenSize]`. */
  wv: Float32Array;
  /** `[hiddenSize, group * headDim]`. */
  wo: Float32Array;
}

/** Reads only the slices of kv head `kvHead` in `layer`. */
export async function readKvHeadWeights(
  weights: ModelWeights,
  config: ModelConfig,
  layer: number,
  kvHead: number,
): Promise<KvHeadWeights> {
  const ranges = kvHeadRanges(config, kvHead);
  const name = (kind: 'wq' | 'wk' | 'wv' | 'wo') => layerWeightName(layer, `attention.${kind}`);
  const [wq, wk, wv, wo] = await Promise.all([
    weights.readRows(name('wq'), ranges.queryRows.first, ranges.queryRows.count),
    weights.readRows(name('wk'), ranges.kvRows.first, ranges.kvRows.count),
    weights.readRows(name('wv'), ranges.kvRows.first, ranges.kvRows.count),
    weights.readColumns(name('wo'), ranges.outputColumns.first, ranges.outputColumns.count),
  ]);
  return { wq, wk, wv, wo };
}
