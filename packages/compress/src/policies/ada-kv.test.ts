import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bareObservation, fixedScorer, plainIndices, randomObservation } from '../__fixtures__/observations.js';
import { adaKvAllocator } from '../allocators/ada-kv-allocator.js';
import { uniformLayerBudget } from '../allocators/uniform-layer-budget.js';
import { composePolicy } from '../compose-policy.js';
import { validateLayerCompression } from '../layer-compression.js';
import { adaKvPolicy } from './ada-kv.js';

// 2 kv heads, 8 tokens, window 2 -> prefix 6; averageBudget 5 -> b = 3, layer budget H x b = 6.
// Layer-wide top 6: head 0 gets .9 .8 .7 .6 .1 (5), head 1 gets .5 (1).
const scores = [
  [0.9, 0.8, 0.7, 0.6, 0.1, 0.0],
  [0.5, 0.05, 0.04, 0.03, 0.02, 0.01],
];
const layer = { layerIndex: 0, layerCount: 1 };

function run(options: Parameters<typeof adaKvAllocator>[1], averageBudget = 5, position = layer) {
  return composePolicy({
    name: 'ada-kv',
    settings: {},
    window: 2,
    scorer: fixedScorer(scores),
    allocator: adaKvAllocator(uniformLayerBudget(averageBudget), options),
  }).compressLayer(bareObservation(8, 2), position);
}

describe('adaKvAllocator, FFY0/AdaKV variant', () => {
  it('alpha 0.2: floor(3 x 0.2) = 0, budgets round(5 x 0.8) = 4 and round(1 x 0.8) = 1', () => {
    const result = run({ floorAlpha: 0.2 });
    expect(Array.from(result.budgets)).toEqual([6, 3]);
    expect(plainIndices(result.indices)).toEqual([
      [0, 1, 2, 3, 6, 7],
      [0, 6, 7],
    ]);
  });

  it('alpha 0.5: floor 1, round(3.5) = 4 and round(1.5) = 2 (half to even, as torch.round)', () => {
    const result = run({ floorAlpha: 0.5 });
    expect(Array.from(result.budgets)).toEqual([6, 4]);
    expect(plainIndices(result.indices)).toEqual([
      [0, 1, 2, 3, 6, 7],
      [0, 1, 6, 7],
    ]);
  });

  it('keeps everything when the layer budget exceeds the prefix, uniform budgets in skipped layers', () => {
    expect(Array.from(run({}, 9).budgets)).toEqual([8, 8]);
    expect(Array.from(run({ skipLayers: 1 }).budgets)).toEqual([5, 5]);
  });
});

describe('adaKvAllocator, kvpress variant (alpha_safeguard)', () => {
  it('alpha 0.8: n_safe = floor(0.8 x 5) = 4 counting the 2-token window protects 2 prefix tokens per head', () => {
    const result = run({ floorAlpha: 0.8, variant: 'kvpress' });
    expect(Array.from(result.budgets)).toEqual([6, 4]);
    expect(plainIndices(result.indices)).toEqual([
      [0, 1, 2, 3, 6, 7],
      [0, 1, 6, 7],
    ]);
  });

  it('alpha 0.5: n_safe = floor(2.5) = 2 is the window alone; plain layer-wide top 6, exactly H x b', () => {
    const result = run({ floorAlpha: 0.5, variant: 'kvpress' });
    expect(Array.from(result.budgets)).toEqual([7, 3]);
    expect(plainIndices(result.indices)).toEqual([
      [0, 1, 2, 3, 4, 6, 7],
      [0, 6, 7],
    ]);
  });
});

describe('adaKvPolicy invariants (property)', () => {
  const arbitrary = fc.record({
    seed: fc.nat(),
    seqLen: fc.integer({ min: 1, max: 120 }),
    kvHeadCount: fc.integer({ min: 1, max: 4 }),
    group: fc.integer({ min: 1, max: 3 }),
    windowSize: fc.integer({ min: 1, max: 12 }),
    extraBudget: fc.integer({ min: 0, max: 60 }),
    floorAlpha: fc.double({ min: 0, max: 1, noNaN: true }),
    ties: fc.boolean(),
    normalize: fc.boolean(),
  });

  it('layer total is H x b within rounding and every head keeps at least its floor', () => {
    fc.assert(
      fc.property(arbitrary, (c) => {
        const observation = randomObservation({
          ...c,
          queryHeadCount: c.kvHeadCount * c.group,
          windowRows: c.windowSize,
        });
        const averageBudget = c.windowSize + c.extraBudget;
        for (const variant of ['adakv', 'kvpress'] as const) {
          const policy = adaKvPolicy({
            averageBudget,
            windowSize: c.windowSize,
            floorAlpha: c.floorAlpha,
            variant,
            normalize: c.normalize,
          });
          const result = policy.compressLayer(observation, layer);
          validateLayerCompression(result, c.seqLen, c.windowSize);
          const window = Math.min(c.windowSize, c.seqLen);
          const prefix = c.seqLen - window;
          const b = averageBudget - c.windowSize;
          const prefixBudgets = Array.from(result.budgets, (budget) => budget - window);
          const total = prefixBudgets.reduce((x, y) => x + y, 0);
          const heads = c.kvHeadCount;
          if (b > prefix) {
            expect(prefixBudgets).toEqual(new Array(heads).fill(prefix));
            continue;
          }
          const floor =
            variant === 'kvpress'
              ? Math.max(0, Math.floor(c.floorAlpha * averageBudget) - c.windowSize)
              : Math.floor(b * c.floorAlpha);
          for (const budget of prefixBudgets) expect(budget).toBeGreaterThanOrEqual(Math.min(floor, prefix));
          if (variant === 'kvpress') expect(total).toBe(heads * b);
          else {
            expect(total).toBeGreaterThan(heads * b - 1.5 * heads);
            expect(total).toBeLessThanOrEqual(heads * b + 0.5 * heads);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('with a pyramid (Ada-PyramidKV) each layer splits its pyramid budget across heads', () => {
    const observation = randomObservation({ seed: 3, seqLen: 400, queryHeadCount: 8, kvHeadCount: 4, windowRows: 8 });
    const policy = adaKvPolicy({ averageBudget: 48, windowSize: 8, pyramid: true, variant: 'kvpress' });
    const totals = [0, 1, 2, 3, 4].map((layerIndex) => {
      const result = policy.compressLayer(observation, { layerIndex, layerCount: 5 });
      return Array.from(result.budgets).reduce((x, y) => x + y - 8, 0);
    });
    expect(totals).toEqual([78, 59, 40, 21, 2].map((b) => 4 * b));
  });
});
