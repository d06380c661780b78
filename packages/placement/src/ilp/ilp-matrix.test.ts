import { CapacityError, validatePlan } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { h100, profileFixtures } from '../__fixtures__/fixtures.js';
import { solvePlacement } from '../solve-placement.js';
import { solveIlp } from './index.js';

// Fixed batches are covered by the brute-force and heavy-tailed property tests in solve-ilp.test.ts.
describe('ilp at the largest batch on every fixture yields a valid plan, proven optimal unless memory couples layers, no slower than fair-copy', () => {
  for (const fixture of profileFixtures()) {
    it(fixture.label, async () => {
      let plans = 0;
      for (const deviceCount of [2, 4, 8]) {
        const cluster = h100(deviceCount);
        for (const batch of ['max'] as const) {
          const request = { model: fixture.model, profile: fixture.profile, cluster, batch };
          let fairCopy: ReturnType<typeof solvePlacement>;
          try {
            fairCopy = solvePlacement({ ...request, solver: 'fair-copy' });
          } catch (error) {
            expect(error).toBeInstanceOf(CapacityError);
            await expect(solveIlp(request)).rejects.toBeInstanceOf(CapacityError);
            continue;
          }
          const result = await solveIlp({ ...request, options: { worker: false } });
          expect(
            validatePlan(JSON.parse(JSON.stringify(result.plan)), { model: fixture.model, cluster }).issues,
          ).toEqual([]);
          expect(result.plan.solver).toBe('ilp');
          if (!result.optimal) {
            // only when memory (at fair-copy's largest batch) binds across layers: then the gap to the bound is reported
            expect(result.coupled).toBe(true);
            expect(result.gap).toBeGreaterThan(0);
            expect(result.gap).toBeLessThan(0.05);
            expect(result.warnings.join('\n')).toMatch(/binds across layers/);
          }
          expect(result.predicted.throughputTokensPerSecond).toBeGreaterThanOrEqual(
            fairCopy.predicted.throughputTokensPerSecond * (1 - 1e-12),
          );
          plans++;
        }
      }
      expect(plans).toBeGreaterThan(0);
    });
  }
});
