import { ConfigError, ValidationError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { plainIndices, randomObservation, windowScoresFrom } from '../__fixtures__/observations.js';
import type { LayerObservation } from '../observation.js';
import { snapKvPolicy } from './snapkv.js';

/**
 * 8 tokens, 2 query heads sharing 1 kv head, 2 window rows (positions 6 and 7), each row a causal softmax.
 * Window means over prefix keys 0..5:  qh0 [.25 .05 .05 .28 .05 .05], qh1 [.05 .05 .40 0 .10 .20]
 *   group mean [.15 .05 .225 .14 .075 .125]    group max [.25 .05 .40 .28 .10 .20]
 */
const observation: LayerObservation = {
  seqLen: 8,
  queryHeadCount: 2,
  kvHeadCount: 1,
  windowScores: windowScoresFrom([
    [
      [0.3, 0.05, 0.05, 0.26, 0.05, 0.05, 0.24, 0],
      [0.2, 0.05, 0.05, 0.3, 0.05, 0.05, 0.1, 0.2],
    ],
    [
      [0.05, 0.05, 0.5, 0, 0.1, 0.1, 0.2, 0],
      [0.05, 0.05, 0.3, 0, 0.1, 0.3, 0.1, 0.1],
    ],
  ]),
};
const layer = { layerIndex: 0, layerCount: 1 };
const base = { averageBudget: 4, windowSize: 2 };

describe('snapKvPolicy', () => {
  it('keeps the top prefix tokens by window attention (GQA mean, no pooling) plus the window', () => {
    const result = snapKvPolicy({ ...base, kernelSize: 1 }).compressLayer(observation, layer);
    expect(Array.from(result.budgets)).toEqual([4]);
    expect(plainIndices(result.indices)).toEqual([[0, 2, 6, 7]]);
  });

  it('GQA max reduction keeps what any query head of the group needs', () => {
    const result = snapKvPolicy({ ...base, kernelSize: 1, groupReduction: 'max' }).compressLayer(observation, layer);
    expect(plainIndices(result.indices)).toEqual([[2, 3, 6, 7]]);
  });

  it('max pooling (kernel 3) smooths before selecting; its three-way tie goes to the earliest', () => {
    // pooled mean: [.15 .225 .225 .225 .14 .125]
    const result = snapKvPolicy({ ...base, kernelSize: 3, pooling: 'max' }).compressLayer(observation, layer);
    expect(plainIndices(result.indices)).toEqual([[1, 2, 6, 7]]);
  });

  it('avg pooling (kernel 3, padding counted)', () => {
    // pooled mean: [.0667 .1417 .1383 .1467 .1133 .0667]
    const result = snapKvPolicy({ ...base, kernelSize: 3, pooling: 'avg' }).compressLayer(observation, layer);
    expect(plainIndices(result.indices)).toEqual([[1, 3, 6, 7]]);
  });

  it('keeps the whole prompt when the budget is at least the prompt length', () => {
    for (const averageBudget of [8, 9, 1000]) {
      const result = snapKvPolicy({ averageBudget, windowSize: 2 }).compressLayer(observation, layer);
      expect(plainIndices(result.indices)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7]]);
    }
  });

  it('keeps the whole prompt when the window is longer than the prompt (no scores read)', () => {
    const result = snapKvPolicy({ averageBudget: 40, windowSize: 32 }).compressLayer(observation, layer);
    expect(plainIndices(result.indices)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7]]);
  });

  it('rejects an empty prompt with a clear error', () => {
    const empty = { seqLen: 0, queryHeadCount: 2, kvHeadCount: 1, windowScores: new Float32Array(0) };
    expect(() => snapKvPolicy(base).compressLayer(empty, layer)).toThrow(ValidationError);
    expect(() => snapKvPolicy(base).compressLayer(empty, layer)).toThrow(
      /seqLen: expected a positive integer, got 0 \(empty prompt/,
    );
  });

  it('names the missing or short window scores', () => {
    const { windowScores: _unused, ...bare } = observation;
    expect(() => snapKvPolicy(base).compressLayer(bare, layer)).toThrow(/needs observation\.windowScores/);
    const wide = snapKvPolicy({ averageBudget: 5, windowSize: 3 });
    expect(wide.requirements.windowRows).toBe(3);
    expect(() => wide.compressLayer(observation, layer)).toThrow(/W >= 3.*got W = 2/);
  });

  it('rejects bad options naming each field', () => {
    expect(() => snapKvPolicy({ averageBudget: 8, windowSize: 16 })).toThrow(ConfigError);
    expect(() => snapKvPolicy({ averageBudget: 64, kernelSize: 4 })).toThrow(/kernelSize: expected an odd integer/);
    expect(() => snapKvPolicy({ averageBudget: 64, pooling: 'mean' as never })).toThrow(/pooling/);
  });

  it('uses device-reduced window sums when they cover its window, with the same result', () => {
    const full = randomObservation({ seed: 4, seqLen: 150, queryHeadCount: 6, kvHeadCount: 2, windowRows: 12 });
    const rows = 12;
    const windowSize = 8;
    const sums = new Float32Array(6 * 150);
    for (let head = 0; head < 6; head++) {
      for (let row = rows - windowSize; row < rows; row++) {
        for (let key = 0; key < 150; key++)
          sums[head * 150 + key]! += full.windowScores![(head * rows + row) * 150 + key]!;
      }
    }
    const policy = snapKvPolicy({ averageBudget: 40, windowSize, groupReduction: 'max' });
    const fromScores = policy.compressLayer(full, layer);
    const { windowScores: _unused, ...reduced } = full;
    const fromSums = policy.compressLayer(
      { ...reduced, windowAttentionSums: sums, windowAttentionRows: windowSize },
      layer,
    );
    expect(plainIndices(fromSums.indices)).toEqual(plainIndices(fromScores.indices));
    expect(() =>
      policy.compressLayer({ ...reduced, windowAttentionSums: sums, windowAttentionRows: 12 }, layer),
    ).toThrow(/windowAttentionSums over 8 rows \(got 12\)/);
    expect(() => policy.compressLayer({ ...reduced, windowAttentionSums: sums }, layer)).toThrow(
      /windowAttentionRows: expected an integer/,
    );
  });
});
