import { type ModelConfig, queryGroupSize } from '@fairkv/core';
import type { ModelWeights } from '../model/model-weights.js';
import { type LayerWeightKind, layerWeightName } from '../model/weight-names.js';
import type { DeviceShard } from './device-shards.js';

/** What slicing reads from a loaded model (`ModelWeights` of the model loader satisfies it). */
export type ShardWeightSource = Pick<ModelWeights, 'read' | 'readRows' | 'readColumns'>;

/**
 * A weight tensor on the host: f32 values, or raw IEEE binary16 / bfloat16 bit patterns matching the
 * device dtype (uploaded as they are, without conversion; benchmarks use this for large random models).
 */
export type HostWeight = Float32Array | Uint16Array;

/** One layer's weights as a device holds them: only its kv-head slices and its MLP rows. */
export interface LayerShardWeights {
  attentionNorm: HostWeight;
  /** `[localHeads*group*headDim][hidden]`: the Wq rows of each hosted head's query group. */
  wq: HostWeight;
  /** `[localHeads*headDim][hidden]`. */
  wk: HostWeight;
  wv: HostWeight;
  /** `[hidden][localHeads*group*headDim]`: the Wo columns of the hosted query groups. */
  wo: HostWeight;
  ffnNorm: HostWeight;
  /** `[ffnEnd-ffnStart][hidden]`. */
  wGate: HostWeight;
  wUp: HostWeight;
  /** `[hidden][ffnEnd-ffnStart]`. */
  wDown: HostWeight;
}

/** Every weight one device holds. */
export interface ShardWeights {
  tokenEmbedding: HostWeight;
  layers: LayerShardWeights[];
  /** Only on the device that computes logits. */
  outputNorm?: HostWeight;
  output?: HostWeight;
}

/** Merges adjacent `[start, count]` blocks so contiguous hosted heads are read in one go. */
function mergeBlocks(blocks: [number, number][]): [number, number][] {
  const merged: [number, number][] = [];
  for (const [start, count] of blocks) {
    const last = merged[merged.length - 1];
    if (last && last[0] + last[1] === start) last[1] += count;
    else merged.push([start, count]);
  }
  return merged;
}

async function readRowBlocks(
  source: ShardWeightSource,
  name: string,
  blocks: [number, number][],
): Promise<Float32Array> {
  const parts = await Promise.all(mergeBlocks(blocks).map(([start, count]) => source.readRows(name, start, count)));
  const out = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0) || 0);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

async function readColumnBlocks(
  source: ShardWeightSource,
  name: string,
  rows: number,
  blocks: [number, number][],
): Promise<Float32Array> {
  const merged = mergeBlocks(blocks);
  const parts = await Promise.all(merged.map(([start, count]) => source.readColumns(name, start, count)));
  const width = merged.reduce((sum, [, count]) => sum + count, 0);
  const out = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    let offset = r * width;
    merged.forEach(([, count], i) => {
      out.set(parts[i]!.subarray(r * count, (r + 1) * count), offset);
      offset += count;
    });
  }
  return out;
}

/**
 * Slices a device's weights from the full model: for each layer the Wq rows, Wk/Wv rows and Wo columns
 * of the kv heads it hosts (copies included), and its contiguous MLP slice; the embedding on every
 * device (each keeps the replicated residual stream); the final norm and LM head on the logits device.
 */
export async function sliceShardWeights(
  source: ShardWeightSource,
  config: ModelConfig,
  shard: DeviceShard,
): Promise<ShardWeights> {
  const { hiddenSize: hidden, headDim } = config;
  const group = queryGroupSize(config);
  const layers: LayerShardWeights[] = [];
  for (let l = 0; l < config.layerCount; l++) {
    const heads = shard.layers[l]!.map((head) => head.kvHead);
    const queryBlocks = heads.map((h): [number, number] => [h * group * headDim, group * headDim]);
    const kvBlocks = heads.map((h): [number, number] => [h * headDim, headDim]);
    const ffnBlock: [number, number][] = [[shard.ffnStart, shard.ffnEnd - shard.ffnStart]];
    const name = (kind: LayerWeightKind) => layerWeightName(l, kind);
    layers.push({
      attentionNorm: await source.read(name('attentionNorm')),
      wq: await readRowBlocks(source, name('attention.wq'), queryBlocks),
      wk: await readRowBlocks(source, name('attention.wk'), kvBlocks),
      wv: await readRowBlocks(source, name('attention.wv'), kvBlocks),
      wo: await readColumnBlocks(source, name('attention.wo'), hidden, queryBlocks),
      ffnNorm: await source.read(name('feedForwardNorm')),
      wGate: await readRowBlocks(source, name('feedForward.gate'), ffnBlock),
      wUp: await readRowBlocks(source, name('feedForward.up'), ffnBlock),
      wDown: await readColumnBlocks(source, name('feedForward.down'), hidden, ffnBlock),
    });
  }
  return {
    tokenEmbedding: await source.read('tokenEmbedding'),
    layers,
    ...(shard.computesLogits
      ? { outputNorm: await source.read('outputNorm'), output: await source.read('output') }
      : {}),
  };
}
