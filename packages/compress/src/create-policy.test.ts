import { ConfigError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { bareObservation, randomObservation } from './__fixtures__/observations.js';
import { createPolicy, POLICY_NAMES, type PolicySpec } from './create-policy.js';
import { adaKvPolicy } from './policies/ada-kv.js';

describe('createPolicy', () => {
  it('builds every built-in policy by name, with its factory defaults', () => {
    const specs: PolicySpec[] = [
      { name: 'full' },
      { name: 'streaming-llm' },
      { name: 'snapkv', averageBudget: 64 },
      { name: 'pyramidkv', averageBudget: 64 },
      { name: 'ada-kv', averageBudget: 64 },
      { name: 'headkv', averageBudget: 64, importance: [[1, 2]] },
      { name: 'duo-attention', gates: [[0.9, 0.1]] },
      { name: 'h2o' },
    ];
    expect(specs.map((spec) => createPolicy(spec).name)).toEqual([...POLICY_NAMES]);
    expect(createPolicy({ name: 'ada-kv', averageBudget: 64 }).settings).toEqual(
      adaKvPolicy({ averageBudget: 64 }).settings,
    );
  });

  it('gives the same result as the factory', () => {
    const observation = randomObservation({ seed: 2, seqLen: 100, queryHeadCount: 4, kvHeadCount: 2, windowRows: 32 });
    const position = { layerIndex: 0, layerCount: 1 };
    const fromSpec = createPolicy({ name: 'ada-kv', averageBudget: 48, variant: 'kvpress' }).compressLayer(
      observation,
      position,
    );
    const direct = adaKvPolicy({ averageBudget: 48, variant: 'kvpress' }).compressLayer(observation, position);
    expect(fromSpec.indices.map((kept) => Array.from(kept))).toEqual(direct.indices.map((kept) => Array.from(kept)));
    expect(Array.from(createPolicy({ name: 'full' }).compressLayer(bareObservation(3, 1), position).budgets)).toEqual([
      3,
    ]);
  });

  it('names an unknown policy and lists the known ones', () => {
    expect(() => createPolicy({ name: 'tova' } as never)).toThrow(ConfigError);
    expect(() => createPolicy({ name: 'tova' } as never)).toThrow(
      /expected one of full, streaming-llm, snapkv.*got "tova"/,
    );
    expect(() => createPolicy({ name: 'snapkv', averageBudget: 8 })).toThrow(/averageBudget/);
  });
});
