import { ConfigError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { bareObservation, plainIndices, range } from '../__fixtures__/observations.js';
import { fullPolicy } from './full.js';
import { streamingLlmPolicy } from './streaming-llm.js';

const layer = { layerIndex: 0, layerCount: 1 };

describe('streamingLlmPolicy', () => {
  it('keeps the sink and the recent tokens of every head', () => {
    const result = streamingLlmPolicy({ sinkSize: 2, recentSize: 3 }).compressLayer(bareObservation(10, 2), layer);
    expect(plainIndices(result.indices)).toEqual([
      [0, 1, 7, 8, 9],
      [0, 1, 7, 8, 9],
    ]);
  });

  it('keeps prompts no longer than sink + recent whole, including ones shorter than the window', () => {
    const policy = streamingLlmPolicy({ sinkSize: 2, recentSize: 3 });
    expect(plainIndices(policy.compressLayer(bareObservation(5, 1), layer).indices)).toEqual([range(0, 5)]);
    expect(plainIndices(policy.compressLayer(bareObservation(2, 1), layer).indices)).toEqual([range(0, 2)]);
  });

  it('defaults to 4 sink + 2000 recent tokens and rejects negative sizes', () => {
    expect(streamingLlmPolicy().settings).toEqual({ sinkSize: 4, recentSize: 2000 });
    expect(Array.from(streamingLlmPolicy().compressLayer(bareObservation(3000, 1), layer).budgets)).toEqual([2004]);
    expect(() => streamingLlmPolicy({ sinkSize: -1 })).toThrow(ConfigError);
  });
});

describe('fullPolicy', () => {
  it('keeps every token of every head and reads nothing', () => {
    const policy = fullPolicy();
    expect(plainIndices(policy.compressLayer(bareObservation(5, 2, 4), layer).indices)).toEqual([
      range(0, 5),
      range(0, 5),
    ]);
    expect(policy.requirements).toEqual({ windowRows: 0, accumulatedAttention: false, keyNorms: false });
  });

  it('rejects an empty prompt', () => {
    expect(() => fullPolicy().compressLayer(bareObservation(0, 1), layer)).toThrow(/empty prompt/);
  });
});
