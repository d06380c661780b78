import { ConfigError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { plainIndices } from '../__fixtures__/observations.js';
import type { LayerObservation } from '../observation.js';
import { h2oPolicy } from './h2o.js';

// 10 tokens, 2 query heads -> 1 kv head. Accumulated attention of prefix keys 0..6:
//   qh0 [5 1 1 5.5 1 1 1], qh1 [1 1 6 0 1 2 1] -> mean [3 1 3.5 2.75 1 1.5 1], max [5 1 6 5.5 1 2 1]
const observation: LayerObservation = {
  seqLen: 10,
  queryHeadCount: 2,
  kvHeadCount: 1,
  accumulatedAttention: Float32Array.from([5, 1, 1, 5.5, 1, 1, 1, 2, 2, 1, /* qh1 */ 1, 1, 6, 0, 1, 2, 1, 3, 1, 1]),
};
const layer = { layerIndex: 0, layerCount: 1 };

describe('h2oPolicy', () => {
  it('keeps the heavy hitters by accumulated attention plus the recent tokens (ratios truncate)', () => {
    const result = h2oPolicy({ heavyRatio: 0.2, recentRatio: 0.3 }).compressLayer(observation, layer);
    expect(plainIndices(result.indices)).toEqual([[0, 2, 7, 8, 9]]);
  });

  it('GQA max keeps the heavy hitters of any query head', () => {
    const result = h2oPolicy({ heavyRatio: 0.2, recentRatio: 0.3, groupReduction: 'max' }).compressLayer(
      observation,
      layer,
    );
    expect(plainIndices(result.indices)).toEqual([[2, 3, 7, 8, 9]]);
  });

  it('absolute sizes override the ratios', () => {
    const result = h2oPolicy({ heavySize: 1, recentSize: 2 }).compressLayer(observation, layer);
    expect(plainIndices(result.indices)).toEqual([[2, 8, 9]]);
  });

  it('defaults to 10% heavy + 10% recent, and keeps all when they cover the prompt', () => {
    expect(plainIndices(h2oPolicy().compressLayer(observation, layer).indices)).toEqual([[2, 9]]);
    expect(Array.from(h2oPolicy({ heavySize: 7, recentSize: 3 }).compressLayer(observation, layer).budgets)).toEqual([
      10,
    ]);
  });

  it('names the missing accumulated attention and bad options', () => {
    const { accumulatedAttention: _unused, ...bare } = observation;
    expect(() => h2oPolicy().compressLayer(bare, layer)).toThrow(/needs observation\.accumulatedAttention/);
    expect(() => h2oPolicy({ heavyRatio: 2 })).toThrow(ConfigError);
    expect(h2oPolicy().requirements.accumulatedAttention).toBe(true);
  });
});
