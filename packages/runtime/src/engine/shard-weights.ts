import { type DType, type ModelConfig, queryGroupSize } from '@fairkv/core';
import { halfStoredType, type ModelWeights, storedBits } from '../model/model-weights.js';
import { type LayerWeightKind, layerWeightName } from '../model/weight-names.js';
import type { DeviceShard } from './device-shards.js';

/**
 * What slicing reads from a loaded model (`ModelWeights` of the model loader satisfies it). The
 * optional reads let f16 / bf16 weights reach a device of the same dtype as raw bit patterns.
 */
export type ShardWeightSource = Pick<ModelWeights, 'read' | 'readRows' | 'readColumns'> &
  Partial<Pick<ModelWeights, 'info' | 'readStoredBytes' | 'readRowBits' | 'readColumnBitRanges'>>;

/** Options of {@link sliceShardWeights}. */
export interface SliceShardWeightsOptions {
  /**
   * Dtype the device stores weights in (default f32). For f16 or bf16, every weight stored in that
   * same type is read as raw bit patterns (a `Uint16Array`), uploaded without a float32 detour: the
   * same device contents, read in a fraction of the time. Other weights are read as float32.
   */
  dtype?: DType;
}

/**
 * Reads of the weights one device holds, raw where the stored type is the device dtype. `rawGroup`
 * names the weights a device fuses into one buffer (q | k | v, gate | up): they are read raw only if
 * every one of them can be.
 */
interface WeightReader {
  whole(name: string): Promise<HostWeight>;
  rows(name: string, blocks: [number, number][], rawGroup?: readonly string[]): Promise<HostWeight>;
  columns(name: string, rows: number, blocks: [number, number][]): Promise<HostWeight>;
}

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

/**
 * The arrays one after another, in one array of their type (all of one type). A single array is
 * returned as it is (a whole tensor, or one device's contiguous rows: the common case), not copied.
 */
export function joined<A extends Float32Array | Uint16Array>(parts: A[], allocate: (length: number) => A): A {
  if (parts.length === 1) return parts[0]!;
  const out = allocate(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part as never, offset);
    offset += part.length;
  }
  return out;
}

/** Column blocks of `[rows, count]` each, interleaved into `[rows, total count]` (one block: as it is). */
function interleaved<A extends Float32Array | Uint16Array>(
  parts: A[],
  counts: number[],
  rows: number,
  allocate: (length: number) => A,
): A {
  if (parts.length === 1) return parts[0]!;
  const width = counts.reduce((sum, count) => sum + count, 0);
  const out = allocate(rows * width);
  for (let r = 0; r < rows; r++) {
    let offset = r * width;
    counts.forEach((count, i) => {
      out.set(parts[i]!.subarray(r * count, (r + 1) * count) as never, offset);
      offset += count;
    });
  }
  return out;
}

function weightReader(source: ShardWeightSource, dtype: DType): WeightReader {
  const floats = (length: number) => new Float32Array(length);
  const bits = (length: number) => new Uint16Array(length);
  const raw = (name: string): boolean =>
    (dtype === 'f16' || dtype === 'bf16') &&
    source.info !== undefined &&
    source.readStoredBytes !== undefined &&
    source.readRowBits !== undefined &&
    source.readColumnBitRanges !== undefined &&
    halfStoredType(source.info(name).storedType) === dtype;
  return {
    async whole(name) {
      if (!raw(name)) return source.read(name);
      return storedBits(await source.readStoredBytes!(name));
    },
    async rows(name, blocks, rawGroup = [name]) {
      const merged = mergeBlocks(blocks);
      if (rawGroup.every(raw))
        return joined(await Promise.all(merged.map(([start, count]) => source.readRowBits!(name, start, count))), bits);
      return joined(await Promise.all(merged.map(([start, count]) => source.readRows(name, start, count))), floats);
    },
    async columns(name, rows, blocks) {
      const merged = mergeBlocks(blocks);
      const counts = merged.map(([, count]) => count);
      if (raw(name)) {
        const ranges = merged.map(([first, count]) => ({ first, count }));
        return interleaved(await source.readColumnBitRanges!(name, ranges), counts, rows, bits);
      }
      const parts = await Promise.all(merged.map(([start, count]) => source.readColumns(name, start, count)));
      return interleaved(parts, counts, rows, floats);
    },
  };
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
  options: SliceShardWeightsOptions = {},
): Promise<ShardWeights> {
  const { hiddenSize: hidden, headDim } = config;
  const group = queryGroupSize(config);
  const read = weightReader(source, options.dtype ?? 'f32');
  const layers: LayerShardWeights[] = [];
  for (let l = 0; l < config.layerCount; l++) {
    const heads = shard.layers[l]!.map((head) => head.kvHead);
    const queryBlocks = heads.map((h): [number, number] => [h * group * headDim, group * headDim]);
    const kvBlocks = heads.map((h): [number, number] => [h * headDim, headDim]);
    const ffnBlock: [number, number][] = [[shard.ffnStart, shard.ffnEnd - shard.ffnStart]];
    const name = (kind: LayerWeightKind) => layerWeightName(l, kind);
    const qkv = [name('attention.wq'), name('attention.wk'), name('attention.wv')];
    const gateUp = [name('feedForward.gate'), name('feedForward.up')];
    layers.push({
      attentionNorm: await read.whole(name('attentionNorm')),
      wq: await read.rows(name('attention.wq'), queryBlocks, qkv),
      wk: await read.rows(name('attention.wk'), kvBlocks, qkv),
      wv: await read.rows(name('attention.wv'), kvBlocks, qkv),
      wo: await read.columns(name('attention.wo'), hidden, queryBlocks),
      ffnNorm: await read.whole(name('feedForwardNorm')),
      wGate: await read.rows(name('feedForward.gate'), ffnBlock, gateUp),
      wUp: await read.rows(name('feedForward.up'), ffnBlock, gateUp),
      wDown: await read.columns(name('feedForward.down'), hidden, ffnBlock),
    });
  }
  return {
    tokenEmbedding: await read.whole('tokenEmbedding'),
    layers,
    ...(shard.computesLogits ? { outputNorm: await read.whole('outputNorm'), output: await read.whole('output') } : {}),
  };
}
