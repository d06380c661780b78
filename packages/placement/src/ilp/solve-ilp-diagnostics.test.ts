import { beforeEach, describe, expect, it, vi } from 'vitest';
import { bandwidthCluster, profileOfTokens, tinyModel } from '../__fixtures__/fixtures.js';
import { solvePlacement } from '../solve-placement.js';
import type { GlpkRunner } from './glpk-runner.js';
import { solveIlp } from './solve-ilp.js';

// glpk.js replaced by a runner that answers every model with one status, to see how solveIlp reports it
const answer = vi.hoisted(() => ({ status: 4 }));
vi.mock('./glpk-runner.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('./glpk-runner.js')>();
  const stub: GlpkRunner = {
    mode: 'in-thread',
    fallbackReason: undefined,
    async solve(jobs) {
      return jobs.map(() => ({ name: 'stub', time: 0, result: { status: answer.status, z: 0, vars: {} } }));
    },
    async close() {},
  };
  return { ...original, createGlpkRunner: async () => stub };
});

// one replica per head on unequal devices: the group bound does not prove this layer, so the MILP runs
const request = {
  model: tinyModel(1, 3, 4),
  profile: profileOfTokens([[30887, 19481, 0]]),
  cluster: bandwidthCluster([1e11, 2e11, 3e11]),
  batch: 2,
  options: { maxReplicasPerHead: 1, worker: false, timeLimitSeconds: 30 },
};

describe('solveIlp names why a layer is not proven', () => {
  beforeEach(() => {
    answer.status = 4;
  });

  it('glpk.js finding no solution at the incumbent is not reported as a time-out', async () => {
    const result = await solveIlp(request);
    const warning = result.warnings.find((text) => text.includes('not proven'));
    expect(result.optimal).toBe(false);
    expect(warning).toMatch(
      /found no solution at or below the fair-copy incumbent in 1 model\(s\) \(no feasible solution/,
    );
    expect(warning).not.toMatch(/within 30 s/);
    // the fair-copy incumbent is what comes back
    const fairCopy = solvePlacement({ ...request, solver: 'fair-copy' });
    expect(result.predicted.stepTimeSeconds).toBeCloseTo(fairCopy.predicted.stepTimeSeconds, 15);
  });

  it('a solve the time limit stopped with an unproven incumbent is reported as such', async () => {
    answer.status = 2; // feasible, not optimal: glpk's time limit ended the search
    const result = await solveIlp(request);
    expect(result.optimal).toBe(false);
    const warning = result.warnings.find((text) => text.includes('not proven'));
    expect(warning).toBe('ilp: optimality not proven within 30 s (mipGap 0); returning the best incumbent');
  });
});
