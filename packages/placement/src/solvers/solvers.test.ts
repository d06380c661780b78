import { CapacityError, type ClusterSpec, getModelPreset, UnsupportedError, validatePlan } from '@fairkv/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { h100, hasSharedProfiles, profileFixtures, tinyModel } from '../__fixtures__/fixtures.js';
import { SOLVERS, solvePlacement } from '../solve-placement.js';
import { SOLVER_CATALOG } from '../solver-catalog.js';
import { syntheticHeavyTailedProfile } from '../synthetic-profile.js';
import type { SolverName } from './placement-solver.js';

const SOLVER_NAMES = Object.keys(SOLVERS) as SolverName[];
const fixtures = profileFixtures();

describe('every solver on every fixture yields a valid plan', () => {
  it.skipIf(!hasSharedProfiles)(
    'has DuoAttention fixtures from ../shared (skipped when ../shared/profiles is missing)',
    () => {
      expect(fixtures.filter((fixture) => fixture.label.includes(' duo ')).length).toBe(4 * 6);
    },
  );

  for (const fixture of fixtures) {
    it(`${fixture.label}`, () => {
      let plans = 0;
      for (const deviceCount of [2, 4, 8]) {
        const cluster = h100(deviceCount);
        for (const solver of SOLVER_NAMES) {
          for (const batch of [4, 'max'] as const) {
            const request = { model: fixture.model, profile: fixture.profile, cluster, batch, solver };
            if (solver === 'contiguous' && deviceCount > fixture.model.kvHeadCount) {
              expect(() => solvePlacement(request)).toThrow(UnsupportedError);
              expect(() => solvePlacement(request)).toThrow(/use solver "fair-copy"/);
              continue;
            }
            const tight = fixture.model.name === 'llama-3.3-70b' && deviceCount === 2;
            if (tight && batch === 4) {
              expect(() => solvePlacement(request)).toThrow(CapacityError);
              continue;
            }
            let plan: ReturnType<typeof solvePlacement>['plan'];
            try {
              plan = solvePlacement(request).plan;
            } catch (error) {
              // 70B (141 GB of bf16 weights) on 2 x 72 GB usable: at most a request or two fits, or none.
              if (tight && error instanceof CapacityError) continue;
              throw error;
            }
            const report = validatePlan(JSON.parse(JSON.stringify(plan)), { model: fixture.model, cluster });
            expect(report.issues).toEqual([]);
            expect(plan.solver).toBe(solver);
            expect(plan.predicted.fits).toBe(true);
            if (batch === 'max') expect(plan.predicted.batch).toBe(plan.predicted.maxBatch);
            if (!SOLVERS[solver].copies) expect(plan.predicted.copyCount).toBe(0);
            if (batch === 'max' && solver !== 'contiguous') {
              // at each plan's largest batch: greedy never below standard TP, fair-copy never below greedy
              const baseline = solver === 'greedy' ? 'contiguous' : 'greedy';
              if (baseline === 'greedy' || deviceCount <= fixture.model.kvHeadCount) {
                const other = solvePlacement({ ...request, solver: baseline }).predicted.throughputTokensPerSecond;
                expect(plan.predicted.throughputTokensPerSecond).toBeGreaterThanOrEqual(other * (1 - 1e-12));
              }
            }
            plans++;
          }
        }
      }
      expect(plans).toBeGreaterThan(0);
    });
  }
});

describe('solver catalog', () => {
  it('lists every main-entry solver with its description, and ilp with its own entry', () => {
    const names = SOLVER_CATALOG.map((info) => info.name);
    expect(names).toEqual(['contiguous', 'greedy', 'fair-copy', 'ilp']);
    for (const solver of SOLVER_NAMES) {
      const info = SOLVER_CATALOG.find((entry) => entry.name === solver)!;
      expect(info.entry).toBe('@fairkv/placement');
      expect(info.copies).toBe(SOLVERS[solver].copies);
    }
    expect(SOLVER_CATALOG.find((entry) => entry.name === 'ilp')).toMatchObject({
      entry: '@fairkv/placement/ilp',
      exact: true,
    });
  });
});

describe('capacity', () => {
  const small: ClusterSpec = {
    name: '2x24g',
    devices: [0, 1].map(() => ({ name: 'L4 24GB', memoryBytes: 24e9, memoryBandwidthBytesPerSecond: 300e9 })),
    interconnect: { name: 'PCIe', allReduceBandwidthBytesPerSecond: 25e9, latencySeconds: 20e-6 },
  };
  const model = getModelPreset('llama-3.3-70b');
  const profile = syntheticHeavyTailedProfile({ layerCount: 80, kvHeadCount: 8, contextLength: 32768 });

  it.each(SOLVER_NAMES)('%s: 70B on 2 x 24 GB throws CapacityError naming the device and shortfall', (solver) => {
    for (const batch of [1, 'max'] as const) {
      try {
        solvePlacement({ model, profile, cluster: small, batch, solver });
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(CapacityError);
        const capacity = error as CapacityError;
        expect([0, 1]).toContain(capacity.device);
        expect(capacity.shortfallBytes).toBeGreaterThan(40e9);
        expect(capacity.message).toContain(`device ${capacity.device} (L4 24GB)`);
        expect(capacity.message).toMatch(/short by \d+\.\d\d GB/);
      }
    }
  });

  it('a fixed batch that overflows names the batch; the same plan fits its max batch', () => {
    const cluster = h100(4);
    const fitted = solvePlacement({ model, profile, cluster, batch: 'max', solver: 'fair-copy' });
    expect(() =>
      solvePlacement({ model, profile, cluster, batch: fitted.predicted.maxBatch * 2, solver: 'greedy' }),
    ).toThrow(/at batch \d+ does not fit device/);
  });
});

describe('copy budgets', () => {
  const model = getModelPreset('llama-3.1-8b');
  const profile = syntheticHeavyTailedProfile({ layerCount: 32, kvHeadCount: 8, contextLength: 32768, seed: 3 });
  const cluster = h100(8);

  it('maxReplicasPerHead 1 makes fair-copy copy nothing; copyBudget caps the total', () => {
    const none = solvePlacement({
      model,
      profile,
      cluster,
      batch: 16,
      solver: 'fair-copy',
      options: { maxReplicasPerHead: 1 },
    });
    expect(none.predicted.copyCount).toBe(0);
    const capped = solvePlacement({
      model,
      profile,
      cluster,
      batch: 16,
      solver: 'fair-copy',
      options: { copyBudget: 10 },
    });
    const free = solvePlacement({ model, profile, cluster, batch: 16, solver: 'fair-copy' });
    expect(capped.predicted.copyCount).toBeLessThanOrEqual(10);
    expect(capped.predicted.copyCount).toBeGreaterThan(0);
    expect(free.predicted.copyCount).toBeGreaterThan(10);
    expect(free.predicted.stepTimeSeconds).toBeLessThan(capped.predicted.stepTimeSeconds);
    const two = solvePlacement({
      model,
      profile,
      cluster,
      batch: 16,
      solver: 'fair-copy',
      options: { maxReplicasPerHead: 2 },
    });
    for (const layer of two.plan.layers)
      for (const head of layer.heads) expect(head.replicas.length).toBeLessThanOrEqual(2);
  });
});

/** fast-check arbitrary of a heavy-tailed per-head load matrix (tokens) for a tiny model. */
export const heavyTailedCase = fc.record({
  layerCount: fc.integer({ min: 1, max: 4 }),
  kvHeadCount: fc.integer({ min: 2, max: 8 }),
  deviceCount: fc.integer({ min: 2, max: 8 }),
  batch: fc.integer({ min: 1, max: 64 }),
  seed: fc.integer({ min: 1, max: 1_000_000 }),
  sigma: fc.double({ min: 0, max: 2.5, noNaN: true }),
});

describe('predicted step time: fair-copy <= greedy <= contiguous (fast-check, heavy-tailed profiles)', () => {
  it('holds on random instances', () => {
    fc.assert(
      fc.property(heavyTailedCase, ({ layerCount, kvHeadCount, deviceCount, batch, seed, sigma }) => {
        const devices = Math.min(deviceCount, kvHeadCount);
        const model = tinyModel(layerCount, kvHeadCount);
        const profile = syntheticHeavyTailedProfile({ layerCount, kvHeadCount, contextLength: 65536, sigma, seed });
        const cluster = h100(devices);
        const step = (solver: SolverName) =>
          solvePlacement({ model, profile, cluster, batch, solver }).predicted.stepTimeSeconds;
        const contiguous = step('contiguous');
        const greedy = step('greedy');
        const fairCopy = step('fair-copy');
        expect(greedy).toBeLessThanOrEqual(contiguous * (1 + 1e-12));
        expect(fairCopy).toBeLessThanOrEqual(greedy * (1 + 1e-12));
      }),
      { numRuns: 150 },
    );
  });
});
