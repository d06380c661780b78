import { CancelledError, validatePlan } from '@fairkv/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bruteForceLayerSeconds } from '../__fixtures__/brute-force.js';
import { bandwidthCluster, h100, profileOfTokens, tinyModel } from '../__fixtures__/fixtures.js';
import { resolvePlacementProblem } from '../placement-request.js';
import { solvePlacement } from '../solve-placement.js';
import { syntheticHeavyTailedProfile } from '../synthetic-profile.js';
import { buildIlpModel, createGlpkRunner, GLP_OPT, solveIlp } from './index.js';

const tinyCase = fc.record({
  tokens: fc.array(fc.integer({ min: 0, max: 60_000 }), { minLength: 2, maxLength: 6 }),
  deviceCount: fc.integer({ min: 2, max: 3 }),
  heterogeneous: fc.boolean(),
  copies: fc.constantFrom('none', 'free', 'budget1'),
  batch: fc.integer({ min: 1, max: 8 }),
});

describe('ilp equals brute force on tiny instances (<= 6 heads, <= 3 devices, with and without copies)', () => {
  for (const method of ['auto', 'milp'] as const) {
    it(`method ${method}`, async () => {
      await fc.assert(
        fc.asyncProperty(tinyCase, async ({ tokens, deviceCount, heterogeneous, copies, batch }) => {
          const model = tinyModel(1, tokens.length, 4);
          const bandwidths = Array.from({ length: deviceCount }, (_, device) =>
            heterogeneous ? 1e11 * (1 + device) : 1e11,
          );
          const options = {
            maxReplicasPerHead: copies === 'none' ? 1 : deviceCount,
            copyBudget: copies === 'budget1' ? 1 : Number.POSITIVE_INFINITY,
            worker: false,
          };
          const request = {
            model,
            profile: profileOfTokens([tokens]),
            cluster: bandwidthCluster(bandwidths),
            batch,
            options,
            method,
          };
          const result = await solveIlp(request);
          const problem = resolvePlacementProblem(request);
          const expected = bruteForceLayerSeconds(problem, 0, batch, options.maxReplicasPerHead, options.copyBudget);
          expect(result.optimal).toBe(true);
          expect(result.predicted.layerMaxSeconds[0]).toBeGreaterThanOrEqual(expected * (1 - 1e-9));
          expect(result.predicted.layerMaxSeconds[0]).toBeLessThanOrEqual(expected * (1 + 1e-6));
          expect(result.predicted.copyCount).toBeLessThanOrEqual(options.copyBudget);
          expect(validatePlan(result.plan, { model, cluster: request.cluster }).issues).toEqual([]);
        }),
        { numRuns: method === 'auto' ? 40 : 25 },
      );
    });
  }
});

describe('ilp proves tiny layers on unequal devices that glpk once called infeasible (fast-check counterexamples)', () => {
  // One replica per head on devices of 1, 2 and 3 x 1e11 B/s: the optimum equals fair-copy's layer time, and
  // an upper bound 1e-7 above it was inside glpk's tolerances, so glpk answered "no feasible solution".
  const cases = [
    { tokens: [30887, 19481, 0], batch: 2 },
    { tokens: [0, 21207, 29830, 23283], batch: 7 },
    { tokens: [30793, 57852, 15569, 40193], batch: 8 },
    { tokens: [4676, 38541, 8732, 35228], batch: 2 },
    // a bound 1e-6 above the incumbent still "infeasible" to glpk (both methods): solved with more room
    { tokens: [4343, 42335, 10102, 39045], batch: 1 },
  ];
  for (const { tokens, batch } of cases) {
    it(`heads ${tokens.join(', ')} at batch ${batch}`, async () => {
      const model = tinyModel(1, tokens.length, 4);
      const options = { maxReplicasPerHead: 1, worker: false };
      const request = {
        model,
        profile: profileOfTokens([tokens]),
        cluster: bandwidthCluster([1e11, 2e11, 3e11]),
        batch,
        options,
      };
      const result = await solveIlp({ ...request, method: 'auto' });
      const expected = bruteForceLayerSeconds(resolvePlacementProblem(request), 0, batch, 1, Number.POSITIVE_INFINITY);
      expect(result.optimal).toBe(true);
      expect(result.warnings.filter((warning) => warning.includes('not proven'))).toEqual([]);
      expect(result.predicted.layerMaxSeconds[0]).toBeCloseTo(expected, 15);
      expect(result.plan.layers[0]!.heads.every((head) => head.replicas.length === 1)).toBe(true);
    });
  }
});

describe('ilp on realistic shapes', () => {
  it('is proven optimal and never slower than fair-copy (fast-check, heavy-tailed profiles)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          layerCount: fc.integer({ min: 1, max: 6 }),
          kvHeadCount: fc.integer({ min: 2, max: 8 }),
          deviceCount: fc.integer({ min: 2, max: 8 }),
          batch: fc.integer({ min: 1, max: 64 }),
          seed: fc.integer({ min: 1, max: 1_000_000 }),
          sigma: fc.double({ min: 0, max: 2.5, noNaN: true }),
        }),
        async ({ layerCount, kvHeadCount, deviceCount, batch, seed, sigma }) => {
          const model = tinyModel(layerCount, kvHeadCount);
          const profile = syntheticHeavyTailedProfile({ layerCount, kvHeadCount, contextLength: 65536, sigma, seed });
          const request = { model, profile, cluster: h100(deviceCount), batch };
          const ilp = await solveIlp({ ...request, options: { worker: false } });
          const fairCopy = solvePlacement({ ...request, solver: 'fair-copy' });
          expect(ilp.optimal).toBe(true);
          expect(ilp.predicted.stepTimeSeconds).toBeLessThanOrEqual(fairCopy.predicted.stepTimeSeconds * (1 + 1e-12));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('respects memory across layers: a small device forces the coupled model, the plan fits and beats no one', async () => {
    const model = tinyModel(3, 4);
    const profile = profileOfTokens([
      [40_000, 1_000, 1_000, 1_000],
      [40_000, 1_000, 1_000, 1_000],
      [40_000, 1_000, 1_000, 1_000],
    ]);
    const request = { model, profile, batch: 4, options: { worker: false } };
    const roomy = await solveIlp({ ...request, cluster: bandwidthCluster([1e11, 1e11]) });
    const needed = Math.max(...roomy.predicted.devices.map((device) => device.memoryBytes));
    const tight = bandwidthCluster([1e11, 1e11]);
    tight.devices[1]!.memoryBytes = (needed * 0.75) / 0.9;
    const result = await solveIlp({ ...request, cluster: tight });
    expect(result.coupled).toBe(true);
    expect(result.predicted.fits).toBe(true);
    expect(result.predicted.stepTimeSeconds).toBeGreaterThanOrEqual(roomy.predicted.stepTimeSeconds * (1 - 1e-9));
    const fairCopy = solvePlacement({ ...request, cluster: tight, solver: 'fair-copy' });
    expect(result.predicted.stepTimeSeconds).toBeLessThanOrEqual(fairCopy.predicted.stepTimeSeconds * (1 + 1e-12));
    expect(result.lowerBoundSeconds).toBeLessThanOrEqual(result.predicted.stepTimeSeconds * (1 + 1e-12));
  });
});

describe('ilp worker thread', () => {
  const model = tinyModel(3, 4);
  const profile = syntheticHeavyTailedProfile({ layerCount: 3, kvHeadCount: 4, contextLength: 32768, seed: 11 });
  const request = { model, profile, cluster: bandwidthCluster([1e12, 2e12, 3e12]), batch: 8, method: 'milp' as const };

  it('solves in a worker thread (from the TypeScript sources) with the same result as in-thread', async () => {
    const inWorker = await solveIlp({ ...request, options: { worker: true } });
    const inThread = await solveIlp({ ...request, options: { worker: false } });
    expect(inWorker.mode).toBe('worker');
    expect(inThread.mode).toBe('in-thread');
    expect(inWorker.warnings.filter((warning) => warning.includes('worker'))).toEqual([]);
    expect(inWorker.predicted.stepTimeSeconds).toBeCloseTo(inThread.predicted.stepTimeSeconds, 12);
    expect(inWorker.optimal).toBe(true);
  });

  it('does not block the event loop while solving', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await solveIlp({ ...request, options: { worker: true } });
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
  });

  it('rejects with CancelledError when the signal aborts', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(solveIlp({ ...request, signal: controller.signal, options: { worker: true } })).rejects.toBeInstanceOf(
      CancelledError,
    );
  });

  it('reports progress per distinct layer and stops when aborted mid-solve', async () => {
    const calls: [number, number][] = [];
    const result = await solveIlp({
      ...request,
      method: 'auto',
      onProgress: (solved, total) => calls.push([solved, total]),
    });
    expect(calls.length).toBe(result.modelCount);
    expect(calls.at(-1)).toEqual([result.modelCount, result.modelCount]);
    for (const method of ['milp', 'auto'] as const) {
      const controller = new AbortController();
      const aborted = solveIlp({ ...request, method, signal: controller.signal, onProgress: () => controller.abort() });
      await expect(aborted).rejects.toBeInstanceOf(CancelledError);
    }
  });

  it('falls back to the calling thread, saying why, when the worker cannot start', async () => {
    const runner = await createGlpkRunner(true, undefined, 'file:///nonexistent/glpk.js');
    expect(runner.mode).toBe('in-thread');
    expect(runner.fallbackReason).toMatch(
      /worker thread unavailable \(glpk\.js worker.*nonexistent.*\); glpk\.js ran in the calling thread/s,
    );
    const model = buildIlpModel({
      layers: [
        {
          costs: { base: [0, 0], weight: [1, 1], kv: [[10], [1]].map(([load]) => [load!, load!]) },
          upperBound: 20,
          lowerBound: 0,
        },
      ],
      bandwidth: [1, 1],
      maxReplicasPerHead: 2,
      identicalDevices: true,
    });
    const [result] = await runner.solve([{ model, options: { msglev: 0 } }]);
    expect(result!.result.status).toBe(GLP_OPT);
    expect(result!.result.z / 1e6).toBeCloseTo(7, 9); // loads [10, 1], weight 1, 2 devices: split the heavy head
    await runner.close();
  });

  it('never loads glpk when the group bound proves every layer', async () => {
    const result = await solveIlp({ ...request, cluster: h100(3), method: 'auto' });
    expect(result.mode).toBe('none');
    expect(result.layerProofs.milp).toBe(0);
    expect(result.optimal).toBe(true);
  });
});
