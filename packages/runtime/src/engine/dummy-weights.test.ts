import { getModelPreset } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { bfloat16BitsToNumber, float16BitsToNumber } from '../model/float16.js';
import { deviceShardsFromPlan, singleDevicePlan } from './device-shards.js';
import { dummyShardWeights } from './dummy-weights.js';

const config = getModelPreset('stories260k');
const shard = deviceShardsFromPlan(singleDevicePlan(config), config).shards[0]!;

function moments(values: ArrayLike<number>): { mean: number; std: number } {
  let sum = 0;
  let squares = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i]!;
    squares += values[i]! ** 2;
  }
  const mean = sum / values.length;
  return { mean, std: Math.sqrt(squares / values.length - mean ** 2) };
}

describe('dummy shard weights', () => {
  it('have the shapes of the shard, ones for norms, N(0, 0.02) values in every dtype, and repeat for a seed', () => {
    const { hiddenSize: hidden, headDim, vocabSize, ffnSize } = config;
    const decoders = {
      f32: (array: Float32Array | Uint16Array) => array,
      bf16: (array: Float32Array | Uint16Array) => Array.from(array, bfloat16BitsToNumber),
      f16: (array: Float32Array | Uint16Array) => Array.from(array, float16BitsToNumber),
    };
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      const weights = dummyShardWeights(config, shard, 3, dtype);
      const decode = decoders[dtype];
      expect(weights.tokenEmbedding).toBeInstanceOf(dtype === 'f32' ? Float32Array : Uint16Array);
      expect(weights.tokenEmbedding).toHaveLength(vocabSize * hidden);
      const layer = weights.layers[0]!;
      const heads = shard.layers[0]!.length;
      expect(layer.wq).toHaveLength(heads * 2 * headDim * hidden);
      expect(layer.wk).toHaveLength(heads * headDim * hidden);
      expect(layer.wo).toHaveLength(hidden * heads * 2 * headDim);
      expect(layer.wDown).toHaveLength(hidden * ffnSize);
      expect(new Set(decode(layer.attentionNorm))).toEqual(new Set([1]));
      expect(new Set(decode(weights.outputNorm!))).toEqual(new Set([1]));
      const { mean, std } = moments(decode(layer.wGate));
      expect(Math.abs(mean)).toBeLessThan(0.002);
      expect(std).toBeGreaterThan(0.019);
      expect(std).toBeLessThan(0.021);
      expect(dummyShardWeights(config, shard, 3, dtype).layers[4]!.wUp).toEqual(weights.layers[4]!.wUp);
    }
    expect(dummyShardWeights(config, shard, 4, 'f32').layers[0]!.wq).not.toEqual(
      dummyShardWeights(config, shard, 3, 'f32').layers[0]!.wq,
    );
    expect(() => dummyShardWeights(config, shard, 1.5, 'f32')).toThrow(/seed: expected an integer, got 1.5/);
  });
});
