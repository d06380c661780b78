import { type DType, type ModelConfig, queryGroupSize, ValidationError } from '@fairkv/core';
import { numberToBfloat16Bits, numberToFloat16Bits } from '../model/float16.js';
import { SeededRandom } from '../model/seeded-random.js';
import type { DeviceShard } from './device-shards.js';
import type { HostWeight, ShardWeights } from './shard-weights.js';

const TABLE_SIZE = 1 << 20;

/**
 * Random weights of one device's shard, for benchmarks without a model file (vLLM's
 * `--load-format dummy`): values ~ N(0, 0.02), norms all ones, as raw bf16 or
 * f16 bit patterns for those dtypes (uploaded without conversion) or f32. Large tensors are tiled from a
 * seeded 1M-entry table at random offsets, so an 8B shard takes seconds, not minutes. Deterministic for
 * a seed; the text they produce is noise.
 */
export function dummyShardWeights(config: ModelConfig, shard: DeviceShard, seed: number, dtype: DType): ShardWeights {
  if (!Number.isInteger(seed)) {
    throw new ValidationError(`seed: expected an integer, got ${seed}`, [
      { path: '$.seed', message: 'expected an integer' },
    ]);
  }
  const random32 = new SeededRandom(seed);
  const values = Float32Array.from({ length: TABLE_SIZE }, () => random32.normal() * 0.02);
  const table: HostWeight =
    dtype === 'f32' ? values : Uint16Array.from(values, dtype === 'bf16' ? numberToBfloat16Bits : numberToFloat16Bits);
  const next = () => random32.uniform();
  const random = (count: number): HostWeight => {
    const out = dtype === 'f32' ? new Float32Array(count) : new Uint16Array(count);
    for (let offset = 0; offset < count; offset += TABLE_SIZE) {
      const length = Math.min(TABLE_SIZE, count - offset);
      const start = Math.floor(next() * (TABLE_SIZE - length + 1));
      out.set(table.subarray(start, start + length) as never, offset);
    }
    return out;
  };
  const one = dtype === 'f32' ? 1 : dtype === 'bf16' ? 0x3f80 : 0x3c00;
  const ones = (count: number): HostWeight =>
    dtype === 'f32' ? new Float32Array(count).fill(one) : new Uint16Array(count).fill(one);
  return shapedShardWeights(config, shard, (count, kind) => (kind === 'norm' ? ones(count) : random(count)));
}

/**
 * A shard's weights with every tensor made by `tensor(elementCount, kind)`: the shapes
 * {@link dummyShardWeights} fills with random values, for benchmarks and tests that need other contents
 * (zero-filled arrays, say, which cost address space only until written).
 */
export function shapedShardWeights(
  config: ModelConfig,
  shard: DeviceShard,
  tensor: (elementCount: number, kind: 'matrix' | 'norm') => HostWeight,
): ShardWeights {
  const { hiddenSize: hidden, headDim, vocabSize } = config;
  const group = queryGroupSize(config);
  const ffn = shard.ffnEnd - shard.ffnStart;
  const matrix = (count: number) => tensor(count, 'matrix');
  const norm = (count: number) => tensor(count, 'norm');
  return {
    tokenEmbedding: matrix(vocabSize * hidden),
    layers: shard.layers.map((heads) => ({
      attentionNorm: norm(hidden),
      wq: matrix(heads.length * group * headDim * hidden),
      wk: matrix(heads.length * headDim * hidden),
      wv: matrix(heads.length * headDim * hidden),
      wo: matrix(hidden * heads.length * group * headDim),
      ffnNorm: norm(hidden),
      wGate: matrix(ffn * hidden),
      wUp: matrix(ffn * hidden),
      wDown: matrix(hidden * ffn),
    })),
    ...(shard.computesLogits ? { outputNorm: norm(hidden), output: matrix(vocabSize * hidden) } : {}),
  };
}
