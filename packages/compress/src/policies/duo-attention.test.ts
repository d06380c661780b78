import { readFileSync } from 'node:fs';
import { ConfigError, duoAttentionProfile, parseDuoAttentionGates } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { bareObservation, plainIndices, range } from '../__fixtures__/observations.js';
import { DUO_ATTENTION_MODELS, duoAttentionFile, hasSharedProfiles } from '../__fixtures__/shared.js';
import { duoAttentionPolicy } from './duo-attention.js';

const gates = [
  [0.9, 0.1],
  [0.2, 0.6],
];

describe('duoAttentionPolicy', () => {
  it('retrieval heads keep everything, streaming heads keep sink + recent', () => {
    const policy = duoAttentionPolicy({ gates, sinkSize: 2, recentSize: 3 });
    const observation = bareObservation(10, 2);
    const first = policy.compressLayer(observation, { layerIndex: 0, layerCount: 2 });
    const second = policy.compressLayer(observation, { layerIndex: 1, layerCount: 2 });
    expect(plainIndices(first.indices)).toEqual([range(0, 10), [0, 1, 7, 8, 9]]);
    expect(plainIndices(second.indices)).toEqual([[0, 1, 7, 8, 9], range(0, 10)]);
    expect(policy.requirements).toEqual({ windowRows: 0, accumulatedAttention: false, keyNorms: false });
  });

  it('selects by a sparsity quantile through @fairkv/core (the lowest ceil(s (N - 1)) gates stream)', () => {
    const policy = duoAttentionPolicy({ gates, selection: { sparsity: 0.75 }, sinkSize: 1, recentSize: 1 });
    const layers = [0, 1].map((layerIndex) =>
      Array.from(policy.compressLayer(bareObservation(6, 2), { layerIndex, layerCount: 2 }).budgets),
    );
    expect(layers).toEqual([
      [6, 2],
      [2, 2],
    ]);
  });

  it('keeps short prompts whole and names mismatched gate shapes', () => {
    const policy = duoAttentionPolicy({ gates, sinkSize: 2, recentSize: 3 });
    expect(Array.from(policy.compressLayer(bareObservation(4, 2), { layerIndex: 0, layerCount: 2 }).budgets)).toEqual([
      4, 4,
    ]);
    expect(() => policy.compressLayer(bareObservation(10, 4), { layerIndex: 0, layerCount: 2 })).toThrow(
      /2 layers x 2 kv heads/,
    );
    expect(() => duoAttentionPolicy({ gates: [] })).toThrow(ConfigError);
  });

  it.skipIf(!hasSharedProfiles)('matches @fairkv/core duoAttentionProfile on the released gate files', () => {
    for (const model of DUO_ATTENTION_MODELS) {
      const modelGates = parseDuoAttentionGates(readFileSync(duoAttentionFile(model), 'utf8'));
      const seqLen = 4096;
      const expected = duoAttentionProfile(modelGates, { contextLength: seqLen }).mean;
      const policy = duoAttentionPolicy({ gates: modelGates, gatesSource: model });
      const layerCount = modelGates.length;
      const kvHeadCount = modelGates[0]!.length;
      const measured = modelGates.map((_, layerIndex) =>
        Array.from(
          policy.compressLayer(bareObservation(seqLen, kvHeadCount, kvHeadCount * 4), { layerIndex, layerCount })
            .budgets,
        ),
      );
      expect(measured, model).toEqual(expected);
      const streaming = measured.flat().filter((budget) => budget === 384).length;
      expect(streaming, model).toBeGreaterThan(0);
    }
  });
});
