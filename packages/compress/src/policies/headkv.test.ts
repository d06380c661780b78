import { ConfigError, ValidationError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { bareObservation, fixedScorer, plainIndices, randomObservation } from '../__fixtures__/observations.js';
import { headImportanceAllocator } from '../allocators/head-importance-allocator.js';
import { composePolicy } from '../compose-policy.js';
import { importanceFromProfile, parseHeadKvImportance } from '../headkv-importance.js';
import { validateLayerCompression } from '../layer-compression.js';
import { headKvPolicy } from './headkv.js';

// 2 layers x 2 kv heads, importance [[1, 3], [0, 4]] -> shares [[.125, .375], [0, .5]].
// averageBudget 12, window 2: base 10; beta 2: each head pools floor(10 / 2) = 5, pool = 5 x 2 x 2 = 20, min 5.
// budgets: round(.125 x 20 + 5) = round(7.5) = 8, round(12.5) = 12, 5, 15 (sum 40 = 4 x base)
const importance = [
  [1, 3],
  [0, 4],
];

function prefixBudgets(options: Partial<Parameters<typeof headImportanceAllocator>[0]> = {}, seqLen = 30) {
  const allocator = headImportanceAllocator({ importance, averageBudget: 12, beta: 2, ...options });
  const queryHeadCount = Math.max(2, (options.importance ?? importance)[0]!.length);
  return [0, 1].map((layerIndex) =>
    Array.from(
      allocator.allocate({
        layerIndex,
        layerCount: 2,
        queryHeadCount,
        kvHeadCount: 2,
        seqLen,
        windowSize: 2,
        prefixLength: seqLen - 2,
        scores: () => new Float32Array(0),
      }),
    ),
  );
}

describe('headImportanceAllocator (HeadKV formula)', () => {
  it('budget = round(share x floor(base / beta) x layers x heads + base - floor(base / beta))', () => {
    expect(prefixBudgets()).toEqual([
      [8, 12],
      [5, 15],
    ]);
  });

  it('temperature sharpens the shares: squares [[1, 9], [0, 16]] / 26', () => {
    // 20 x 1/26 + 5 = 5.77 -> 6; 20 x 9/26 + 5 = 11.92 -> 12; 5; 20 x 16/26 + 5 = 17.3 -> 17
    expect(prefixBudgets({ temperature: 2 })).toEqual([
      [6, 12],
      [5, 17],
    ]);
  });

  it('sums query-head importance into kv heads', () => {
    const perQueryHead = [
      [1, 0, 2, 1],
      [0, 0, 1, 3],
    ];
    expect(prefixBudgets({ importance: perQueryHead }).map((row) => row.length)).toEqual([2, 2]);
    expect(prefixBudgets({ importance: perQueryHead })).toEqual(prefixBudgets());
  });

  it('keeps the whole prompt when the prefix is shorter than the base (reference behaviour)', () => {
    expect(prefixBudgets({}, 11)).toEqual([
      [9, 9],
      [9, 9],
    ]);
  });

  it('selects each head its own number of top tokens', () => {
    const policy = composePolicy({
      name: 'headkv',
      settings: {},
      window: 2,
      scorer: fixedScorer([
        [0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6, 0.5, 0.05],
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0],
      ]),
      allocator: headImportanceAllocator({ importance: [[1, 7]], averageBudget: 6, beta: 2 }),
    });
    // base 4, pooled 2, pool 2 x 1 x 2 = 4, min 2: round(4/8 x 1 + 2) = round(2.5) = 2, round(3.5 + 2) = round(5.5) = 6
    const result = policy.compressLayer(bareObservation(12, 2), { layerIndex: 0, layerCount: 1 });
    expect(plainIndices(result.indices)).toEqual([
      [1, 3, 10, 11],
      [0, 1, 2, 3, 4, 5, 10, 11],
    ]);
  });

  it('rejects importance that does not fit the model, or is negative', () => {
    expect(() => prefixBudgets({ importance: [[1, 2, 3]] })).toThrow(ValidationError);
    expect(() => headImportanceAllocator({ importance: [[1, -1]], averageBudget: 12 })).toThrow(
      /\$\.importance\[0\]\[1\]/,
    );
    expect(() => headImportanceAllocator({ importance: [[0, 0]], averageBudget: 12 })).toThrow(ConfigError);
    expect(() => headImportanceAllocator({ importance, averageBudget: 12, beta: 0.5 })).toThrow(/beta/);
  });
});

describe('headKvPolicy', () => {
  it('budgets differ across layers and the indices are valid', () => {
    const observation = randomObservation({ seed: 11, seqLen: 200, queryHeadCount: 4, kvHeadCount: 2, windowRows: 8 });
    const policy = headKvPolicy({ importance, averageBudget: 40, windowSize: 8, beta: 2 });
    const budgets = [0, 1].map((layerIndex) => {
      const result = policy.compressLayer(observation, { layerIndex, layerCount: 2 });
      validateLayerCompression(result, 200, 8);
      return Array.from(result.budgets);
    });
    // base 32, pooled 16, pool 64, min 16: 24, 40, 16, 48 (+ window 8)
    expect(budgets).toEqual([
      [32, 48],
      [24, 56],
    ]);
  });
});

describe('parseHeadKvImportance', () => {
  it('reads "layer-head": [scores] and takes each head mean, by key', () => {
    const text = '{"1-1": [4, 4], "0-0": [1, 3], "0-1": [2], "1-0": [0]}\n';
    expect(parseHeadKvImportance(text)).toEqual([
      [2, 2],
      [0, 4],
    ]);
  });

  it('names bad keys, bad values and missing heads', () => {
    expect(() => parseHeadKvImportance('{"a": [1]}', 'x.json')).toThrow(/x\.json.*"<layer>-<head>"/s);
    expect(() => parseHeadKvImportance('{"0-0": ["1"]}')).toThrow(/finite numbers/);
    expect(() => parseHeadKvImportance('{"0-0": [1], "1-1": [1]}')).toThrow(/\$\["0-1"\]: missing/);
    expect(() => parseHeadKvImportance('not json')).toThrow(/not valid JSON/);
  });

  it('importanceFromProfile copies the mean matrix', () => {
    const mean = [[1, 2]];
    const copy = importanceFromProfile({ mean } as never);
    expect(copy).toEqual(mean);
    expect(copy[0]).not.toBe(mean[0]);
  });
});
