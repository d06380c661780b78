import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bareObservation, plainIndices, randomObservation } from './__fixtures__/observations.js';
import { adaKvAllocator } from './allocators/ada-kv-allocator.js';
import { headImportanceAllocator } from './allocators/head-importance-allocator.js';
import { pyramidLayerBudget } from './allocators/pyramid-layer-budget.js';
import { uniformAllocator } from './allocators/uniform-allocator.js';
import { uniformLayerBudget } from './allocators/uniform-layer-budget.js';
import { type CompressionPolicy, composePolicy } from './compose-policy.js';
import { validateLayerCompression } from './layer-compression.js';
import { adaKvPolicy } from './policies/ada-kv.js';
import { duoAttentionPolicy } from './policies/duo-attention.js';
import { fullPolicy } from './policies/full.js';
import { h2oPolicy } from './policies/h2o.js';
import { headKvPolicy } from './policies/headkv.js';
import { pyramidKvPolicy } from './policies/pyramidkv.js';
import { snapKvPolicy } from './policies/snapkv.js';
import { streamingLlmPolicy } from './policies/streaming-llm.js';
import { h2oScorer } from './scorers/h2o-scorer.js';
import { keyNormScorer } from './scorers/knorm-scorer.js';
import type { Scorer } from './scorers/scorer.js';

const caseArbitrary = fc.record({
  seed: fc.nat(),
  seqLen: fc.integer({ min: 1, max: 96 }),
  kvHeadCount: fc.integer({ min: 1, max: 4 }),
  group: fc.integer({ min: 1, max: 3 }),
  windowSize: fc.integer({ min: 1, max: 10 }),
  extraBudget: fc.integer({ min: 0, max: 80 }),
  layerCount: fc.integer({ min: 1, max: 6 }),
  layerPick: fc.nat(),
  ties: fc.boolean(),
  groupReduction: fc.constantFrom('mean' as const, 'max' as const),
  pooling: fc.constantFrom('max' as const, 'avg' as const),
});

type Case = typeof caseArbitrary extends fc.Arbitrary<infer T> ? T : never;

function policiesFor(c: Case): { policy: CompressionPolicy; window: number }[] {
  const averageBudget = c.windowSize + c.extraBudget;
  const scoring = {
    averageBudget,
    windowSize: c.windowSize,
    groupReduction: c.groupReduction,
    pooling: c.pooling,
    kernelSize: 3,
  };
  const gates = Array.from({ length: c.layerCount }, (_, l) =>
    Array.from({ length: c.kvHeadCount }, (_, h) => ((l * 7 + h * 3 + c.seed) % 10) / 10),
  );
  return [
    { policy: fullPolicy(), window: 0 },
    { policy: streamingLlmPolicy({ sinkSize: 2, recentSize: c.windowSize }), window: c.windowSize },
    { policy: snapKvPolicy(scoring), window: c.windowSize },
    { policy: pyramidKvPolicy(scoring), window: c.windowSize },
    { policy: adaKvPolicy(scoring), window: c.windowSize },
    { policy: adaKvPolicy({ ...scoring, variant: 'kvpress', pyramid: true }), window: c.windowSize },
    {
      policy: headKvPolicy({ ...scoring, importance: gates.map((row) => row.map((g) => g + 0.1)) }),
      window: c.windowSize,
    },
    { policy: duoAttentionPolicy({ gates, sinkSize: 2, recentSize: c.windowSize }), window: c.windowSize },
    {
      policy: h2oPolicy({ heavySize: c.extraBudget, recentSize: c.windowSize, groupReduction: c.groupReduction }),
      window: c.windowSize,
    },
  ];
}

describe('every policy (property)', () => {
  it('indices sorted, unique, in range; count == budget; the window kept; deterministic', () => {
    fc.assert(
      fc.property(caseArbitrary, (c) => {
        const observation = randomObservation({
          ...c,
          queryHeadCount: c.kvHeadCount * c.group,
          windowRows: c.windowSize,
        });
        const position = { layerIndex: c.layerPick % c.layerCount, layerCount: c.layerCount };
        for (const { policy, window } of policiesFor(c)) {
          const result = policy.compressLayer(observation, position);
          expect(result.budgets.length, policy.name).toBe(c.kvHeadCount);
          validateLayerCompression(result, c.seqLen, window);
          const again = policy.compressLayer(observation, position);
          expect(plainIndices(again.indices), policy.name).toEqual(plainIndices(result.indices));
        }
      }),
      { numRuns: 120 },
    );
  });

  it('SnapKV keeps exactly min(seqLen, averageBudget) per head', () => {
    fc.assert(
      fc.property(caseArbitrary, (c) => {
        const observation = randomObservation({
          ...c,
          queryHeadCount: c.kvHeadCount * c.group,
          windowRows: c.windowSize,
        });
        const averageBudget = c.windowSize + c.extraBudget;
        const result = snapKvPolicy({ averageBudget, windowSize: c.windowSize }).compressLayer(observation, {
          layerIndex: 0,
          layerCount: 1,
        });
        expect(Array.from(result.budgets)).toEqual(new Array(c.kvHeadCount).fill(Math.min(c.seqLen, averageBudget)));
      }),
      { numRuns: 60 },
    );
  });
});

describe('composePolicy', () => {
  const throwingScorer: Scorer = {
    name: 'throws',
    settings: {},
    input: 'windowScores',
    score: () => {
      throw new Error('scored although no head needed scores');
    },
  };

  it('never scores when every head keeps all or none of its prefix', () => {
    const keepAll = composePolicy({
      name: 'x',
      settings: {},
      window: 2,
      scorer: throwingScorer,
      allocator: uniformAllocator(uniformLayerBudget(100)),
    });
    expect(Array.from(keepAll.compressLayer(bareObservation(10, 2), { layerIndex: 0, layerCount: 1 }).budgets)).toEqual(
      [10, 10],
    );
    const windowOnly = composePolicy({
      name: 'x',
      settings: {},
      window: 2,
      scorer: throwingScorer,
      allocator: uniformAllocator(uniformLayerBudget(2)),
    });
    expect(
      plainIndices(windowOnly.compressLayer(bareObservation(10, 1), { layerIndex: 0, layerCount: 1 }).indices),
    ).toEqual([[8, 9]]);
  });

  it('composes any scorer with any allocator without special cases', () => {
    const observation = randomObservation({ seed: 5, seqLen: 120, queryHeadCount: 4, kvHeadCount: 2, windowRows: 4 });
    const position = { layerIndex: 1, layerCount: 3 };
    // H2O scores with Ada-KV allocation over PyramidKV layer budgets
    const adaPyramidH2o = composePolicy({
      name: 'h2o+ada+pyramid',
      settings: {},
      window: 4,
      scorer: h2oScorer(),
      allocator: adaKvAllocator(pyramidLayerBudget({ averageBudget: 24, shortPromptFallback: false }), {
        variant: 'kvpress',
      }),
    });
    const result = adaPyramidH2o.compressLayer(observation, position);
    validateLayerCompression(result, 120, 4);
    // pyramid: base 20, min 1, max 39, steps 19: layer 1 -> 20 per head, 40 for the layer
    expect(Array.from(result.budgets).reduce((a, b) => a + b - 4, 0)).toBe(40);
    // key norms with HeadKV budgets
    const knormHeadKv = composePolicy({
      name: 'knorm+headkv',
      settings: {},
      window: 4,
      scorer: keyNormScorer(),
      allocator: headImportanceAllocator({
        importance: [
          [1, 1],
          [1, 3],
          [1, 1],
        ],
        averageBudget: 24,
        beta: 2,
      }),
    });
    expect(knormHeadKv.requirements.keyNorms).toBe(true);
    validateLayerCompression(knormHeadKv.compressLayer(observation, position), 120, 4);
  });

  it('keyNormScorer keeps the lowest-norm keys', () => {
    const policy = composePolicy({
      name: 'knorm',
      settings: {},
      window: 1,
      scorer: keyNormScorer(),
      allocator: uniformAllocator(uniformLayerBudget(3)),
    });
    const observation = {
      seqLen: 5,
      queryHeadCount: 1,
      kvHeadCount: 1,
      keyNorms: Float32Array.from([3, 1, 4, 0.5, 9]),
    };
    expect(plainIndices(policy.compressLayer(observation, { layerIndex: 0, layerCount: 1 }).indices)).toEqual([
      [1, 3, 4],
    ]);
    expect(() => policy.compressLayer(bareObservation(5, 1), { layerIndex: 0, layerCount: 1 })).toThrow(
      /needs observation\.keyNorms/,
    );
  });
});
