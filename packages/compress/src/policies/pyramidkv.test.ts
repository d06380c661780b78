import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { plainIndices, randomObservation } from '../__fixtures__/observations.js';
import { pyramidLayerBudget } from '../allocators/pyramid-layer-budget.js';
import { pyramidKvPolicy } from './pyramidkv.js';
import { snapKvPolicy } from './snapkv.js';

function layerBudgets(
  options: Parameters<typeof pyramidLayerBudget>[0],
  layerCount: number,
  seqLen: number,
  windowSize: number,
) {
  const budget = pyramidLayerBudget(options);
  return Array.from({ length: layerCount }, (_, layerIndex) =>
    budget.prefixBudget({ layerIndex, layerCount, seqLen, windowSize }),
  );
}

describe('pyramidLayerBudget (KVCache-Factory formula)', () => {
  // averageBudget 42, window 2: base 40, min 40 // 20 = 2, max 78
  it('shrinks linearly from max to min with integer steps', () => {
    expect(layerBudgets({ averageBudget: 42 }, 5, 1000, 2)).toEqual([78, 59, 40, 21, 2]); // steps 76 // 4 = 19
    expect(layerBudgets({ averageBudget: 42 }, 4, 1000, 2)).toEqual([78, 53, 28, 3]); // steps 76 // 3 = 25
  });

  it('kvpress-style exact steps round each layer (half to even)', () => {
    expect(layerBudgets({ averageBudget: 42, steps: 'exact' }, 4, 1000, 2)).toEqual([78, 53, 27, 2]);
  });

  it('clamps the pyramid to the prompt: max = n - window, min = 2 base - max', () => {
    // n 70: prefix 68 <= max 78 -> max 68, min 12, steps 56 // 4 = 14
    expect(layerBudgets({ averageBudget: 42, shortPromptFallback: false }, 5, 70, 2)).toEqual([68, 54, 40, 26, 12]);
  });

  it("falls back to SnapKV's uniform budget below twice the base, as KVCache-Factory does", () => {
    expect(layerBudgets({ averageBudget: 42 }, 5, 70, 2)).toEqual([40, 40, 40, 40, 40]);
    expect(layerBudgets({ averageBudget: 42 }, 5, 80, 2)).toEqual([78, 59, 40, 21, 2]);
  });

  it('gives the base to a one-layer model and to prompts shorter than the budget', () => {
    expect(layerBudgets({ averageBudget: 42 }, 1, 1000, 2)).toEqual([40]);
    expect(layerBudgets({ averageBudget: 42, shortPromptFallback: false }, 3, 30, 2)).toEqual([40, 40, 40]);
  });

  it('mean over layers equals the average budget: + r/2 (r = (max - min) mod (L - 1)) with floor steps, within 0.5 exact (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 0, max: 64 }),
        fc.integer({ min: 2, max: 80 }),
        fc.integer({ min: 1, max: 4000 }),
        fc.integer({ min: 1, max: 40 }),
        fc.boolean(),
        (base, windowSize, layerCount, extra, beta, fallback) => {
          const averageBudget = base + windowSize;
          const seqLen = averageBudget + extra;
          const floor = layerBudgets(
            { averageBudget, beta, shortPromptFallback: fallback },
            layerCount,
            seqLen,
            windowSize,
          );
          const mean = floor.reduce((a, b) => a + b, 0) / layerCount;
          expect(mean - base).toBeGreaterThanOrEqual(0);
          expect(mean - base).toBeLessThanOrEqual((layerCount - 2) / 2);
          expect(Math.min(...floor)).toBeGreaterThanOrEqual(0);
          expect(Math.max(...floor)).toBeLessThanOrEqual(Math.max(base, seqLen - windowSize));
          const exact = layerBudgets(
            { averageBudget, beta, steps: 'exact', shortPromptFallback: fallback },
            layerCount,
            seqLen,
            windowSize,
          );
          expect(Math.abs(exact.reduce((a, b) => a + b, 0) / layerCount - base)).toBeLessThanOrEqual(0.5);
        },
      ),
    );
  });
});

describe('pyramidKvPolicy', () => {
  const observation = randomObservation({ seed: 7, seqLen: 300, queryHeadCount: 4, kvHeadCount: 2, windowRows: 8 });

  it('each layer keeps exactly what SnapKV keeps with that layer budget', () => {
    const policy = pyramidKvPolicy({ averageBudget: 48, windowSize: 8, kernelSize: 5 });
    const expected = [78, 59, 40, 21, 2]; // base 40
    expected.forEach((prefixBudget, layerIndex) => {
      const result = policy.compressLayer(observation, { layerIndex, layerCount: 5 });
      expect(Array.from(result.budgets)).toEqual([prefixBudget + 8, prefixBudget + 8]);
      const snap = snapKvPolicy({ averageBudget: prefixBudget + 8, windowSize: 8, kernelSize: 5 });
      expect(plainIndices(result.indices)).toEqual(
        plainIndices(snap.compressLayer(observation, { layerIndex, layerCount: 5 }).indices),
      );
    });
  });
});
