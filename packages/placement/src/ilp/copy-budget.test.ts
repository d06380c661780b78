import { getModelPreset } from '@fairkv/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { h100 } from '../__fixtures__/fixtures.js';
import { deviceMemoryTerms } from '../cost-model.js';
import { resolvePlacementProblem } from '../placement-request.js';
import { solvePlacement } from '../solve-placement.js';
import { syntheticHeavyTailedProfile } from '../synthetic-profile.js';
import { allocateCopies, memoryCopyBudget } from './copy-budget.js';
import { solveIlp } from './solve-ilp.js';

describe('copy budget', () => {
  it('allocateCopies is the exact multiple-choice knapsack (fast-check against enumeration)', () => {
    const curve = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 4 }).map((drops) => {
      const values = [10];
      for (const drop of drops) values.push(values.at(-1)! - drop);
      return values;
    });
    fc.assert(
      fc.property(fc.array(curve, { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 8 }), (curves, budget) => {
        const chosen = allocateCopies(curves, budget);
        expect(chosen.reduce((sum, copies) => sum + copies, 0)).toBeLessThanOrEqual(budget);
        const total = chosen.reduce((sum, copies, layer) => sum + curves[layer]![copies]!, 0);
        let best = Number.POSITIVE_INFINITY;
        const visit = (layer: number, spent: number, sum: number) => {
          if (spent > budget) return;
          if (layer === curves.length) {
            best = Math.min(best, sum);
            return;
          }
          for (const [copies, value] of curves[layer]!.entries()) visit(layer + 1, spent + copies, sum + value);
        };
        visit(0, 0, 0);
        expect(total).toBeCloseTo(best, 12);
      }),
      { numRuns: 100 },
    );
  });

  it('memoryCopyBudget: total memory of any plan is fixed weights + W x replicas + batch x KV', () => {
    const model = getModelPreset('llama-3.1-8b');
    const profile = syntheticHeavyTailedProfile({ layerCount: 32, kvHeadCount: 8, contextLength: 32768, seed: 5 });
    const request = { model, profile, cluster: h100(4), batch: 'max' as const };
    const { plan } = solvePlacement({ ...request, solver: 'fair-copy' });
    const problem = resolvePlacementProblem(request);
    const batch = plan.predicted.batch;
    const { weightBytes, kvBytesPerRequest } = deviceMemoryTerms(problem, plan.layers);
    const total = weightBytes.reduce((sum, value, device) => sum + value + batch * kvBytesPerRequest[device]!, 0);
    const usable = problem.usableMemoryBytes.reduce((sum, value) => sum + value, 0);
    const budget = memoryCopyBudget(problem, batch);
    expect(plan.predicted.copyCount).toBeLessThanOrEqual(budget);
    // the copies still affordable are exactly the spare memory over one weight slice
    expect(Math.floor((usable - total) / problem.headWeightBytes + 1e-9)).toBe(budget - plan.predicted.copyCount);
  });

  it('ilp with a copyBudget is proven optimal, keeps the budget and beats fair-copy under the same budget', async () => {
    const model = getModelPreset('llama-3.1-8b');
    const profile = syntheticHeavyTailedProfile({ layerCount: 32, kvHeadCount: 8, contextLength: 32768, seed: 3 });
    const request = { model, profile, cluster: h100(8), batch: 16, options: { copyBudget: 20, worker: false } };
    const ilp = await solveIlp(request);
    const fairCopy = solvePlacement({ ...request, solver: 'fair-copy' });
    expect(ilp.coupled).toBe(true);
    expect(ilp.optimal).toBe(true);
    expect(ilp.predicted.copyCount).toBeLessThanOrEqual(20);
    expect(ilp.predicted.stepTimeSeconds).toBeLessThanOrEqual(fairCopy.predicted.stepTimeSeconds * (1 + 1e-12));
    const free = await solveIlp({ ...request, options: { worker: false } });
    expect(free.predicted.stepTimeSeconds).toBeLessThanOrEqual(ilp.predicted.stepTimeSeconds * (1 + 1e-12));
  });
});
