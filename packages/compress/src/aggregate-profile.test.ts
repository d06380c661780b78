import { ValidationError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { bareObservation } from './__fixtures__/observations.js';
import { aggregateProfile } from './aggregate-profile.js';
import { compressPrompt } from './compress-prompt.js';
import type { PromptCompression } from './layer-compression.js';
import { streamingLlmPolicy } from './policies/streaming-llm.js';

function result(budgets: number[][]): PromptCompression {
  return {
    seqLen: 100,
    layers: budgets.map((row) => ({
      budgets: Int32Array.from(row),
      indices: row.map((count) => new Int32Array(count)),
    })),
  };
}

const policy = { name: 'test', settings: { averageBudget: 10 } };

describe('aggregateProfile', () => {
  it('computes mean, linear-interpolated p90 and max per (layer, kv head)', () => {
    const profile = aggregateProfile([result([[1, 10]]), result([[2, 20]]), result([[10, 30]])], {
      contextLength: 100,
      policy,
      source: 'unit test',
      model: 'toy',
    });
    expect(profile.mean).toEqual([[13 / 3, 20]]);
    expect(profile.p90![0]![0]).toBeCloseTo(8.4, 12); // sorted [1 2 10]: position 1.8 -> 2 + 0.8 x 8
    expect(profile.p90![0]![1]).toBeCloseTo(28, 12);
    expect(profile.max).toEqual([[10, 30]]);
    expect(profile).toMatchObject({
      version: 1,
      layerCount: 1,
      kvHeadCount: 2,
      sampleCount: 3,
      source: 'unit test',
      model: 'toy',
    });
    expect(profile.policy).toEqual(policy);
  });

  it('adds generated tokens capped at the context length', () => {
    const profile = aggregateProfile([result([[10, 95]])], {
      contextLength: 100,
      policy,
      source: 's',
      generatedTokens: 10,
    });
    expect(profile.mean).toEqual([[20, 100]]);
    expect(profile.policy.settings).toEqual({ averageBudget: 10, generatedTokens: 10 });
  });

  it('aggregates real policy results from compressPrompt', () => {
    const streaming = streamingLlmPolicy({ sinkSize: 4, recentSize: 60 });
    const results = [50, 100, 200].map((seqLen) =>
      compressPrompt(streaming, [bareObservation(seqLen, 2), bareObservation(seqLen, 2)]),
    );
    const profile = aggregateProfile(results, { contextLength: 200, policy: streaming, source: 'three prompts' });
    expect(profile.mean).toEqual([
      [(50 + 64 + 64) / 3, (50 + 64 + 64) / 3],
      [(50 + 64 + 64) / 3, (50 + 64 + 64) / 3],
    ]);
    expect(profile.policy).toEqual({ name: 'streaming-llm', settings: { sinkSize: 4, recentSize: 60 } });
  });

  it('rejects no results, mismatched shapes and budgets above the context', () => {
    expect(() => aggregateProfile([], { contextLength: 10, policy, source: 's' })).toThrow(ValidationError);
    expect(() =>
      aggregateProfile([result([[1, 2]]), result([[1]])], { contextLength: 10, policy, source: 's' }),
    ).toThrow(/result 1: expected 1 layers x 2 kv heads/);
    expect(() => aggregateProfile([result([[1, 20]])], { contextLength: 10, policy, source: 's' })).toThrow(
      /more than contextLength 10/,
    );
  });
});

describe('compressPrompt', () => {
  it('rejects layers that disagree on the prompt length, and no layers', () => {
    const policy = streamingLlmPolicy();
    expect(() => compressPrompt(policy, [bareObservation(5, 1), bareObservation(6, 1)])).toThrow(
      /layer 1: seqLen 6 differs/,
    );
    expect(() => compressPrompt(policy, [])).toThrow(/got none/);
  });
});
