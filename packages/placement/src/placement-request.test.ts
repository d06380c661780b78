import { createCluster, getModelPreset, ValidationError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { type PlacementOptions, resolvePlacementProblem } from './placement-request.js';
import { solvePlacement } from './solve-placement.js';
import { syntheticHeavyTailedProfile } from './synthetic-profile.js';

const model = getModelPreset('llama-3.1-8b');
const profile = syntheticHeavyTailedProfile({ layerCount: 32, kvHeadCount: 8, contextLength: 8192 });
const cluster = createCluster('h100-sxm-80g', 4);

function optionError(options: Record<string, unknown>): ValidationError {
  try {
    solvePlacement({ model, profile, cluster, batch: 8, solver: 'greedy', options: options as PlacementOptions });
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('placement options', () => {
  it.each([
    [{ maxReplicasPerHead: 0 }, 'maxReplicasPerHead', '0'],
    [{ maxReplicasPerHead: 5 }, 'maxReplicasPerHead', 'device count 4'],
    [{ copyBudget: -1 }, 'copyBudget', '-1'],
    [{ copyBudget: 1.5 }, 'copyBudget', '1.5'],
    [{ memoryUtilization: 1.5 }, 'memoryUtilization', '1.5'],
    [{ layerOverheadSeconds: -1 }, 'layerOverheadSeconds', '-1'],
    [{ bandwidthEfficiency: 0 }, 'bandwidthEfficiency', '0'],
    [{ bandwidthEfficiency: 1.2 }, 'bandwidthEfficiency', '1.2'],
    [{ memoryLoad: 'p99' }, 'memoryLoad', 'p99'],
    [{ timeLimitSeconds: 0 }, 'timeLimitSeconds', '0'],
    [{ mipGap: 2 }, 'mipGap', '2'],
    [{ worker: 'yes' }, 'worker', 'yes'],
    [{ copies: 3 }, 'copies', 'unknown option'],
  ])('%o is rejected naming the option', (options, name, detail) => {
    const error = optionError(options);
    expect(error.issues.map((issue) => issue.path)).toContain(`$.options.${name}`);
    expect(error.message).toContain(name);
    expect(error.message).toContain(detail);
  });

  it('names every bad field of the request at once', () => {
    const wrongProfile = syntheticHeavyTailedProfile({ layerCount: 5, kvHeadCount: 4, contextLength: 100 });
    try {
      resolvePlacementProblem({ model, profile: wrongProfile, cluster, batch: 0, contextLength: -3 });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      const paths = (error as ValidationError).issues.map((issue) => issue.path);
      expect(paths).toEqual(['$.profile.layerCount', '$.profile.kvHeadCount', '$.batch', '$.contextLength']);
    }
  });

  it('rejects an unknown solver naming it', () => {
    expect(() => solvePlacement({ model, profile, cluster, batch: 8, solver: 'ilp' as 'greedy' })).toThrow(
      /solver: expected one of contiguous, greedy, fair-copy/,
    );
  });

  it('applies defaults and caps kept tokens at the context', () => {
    const problem = resolvePlacementProblem({ model, profile, cluster, batch: 8, contextLength: 1000 });
    expect(problem.options).toMatchObject({
      maxReplicasPerHead: 4,
      copyBudget: Infinity,
      memoryUtilization: 0.9,
      worker: true,
    });
    expect(problem.dtype).toBe('bf16');
    const perToken = 2 * 128 * 2;
    for (const row of problem.kvReadBytes) for (const bytes of row) expect(bytes).toBeLessThanOrEqual(1000 * perToken);
    expect(problem.warnings).toEqual([expect.stringContaining('no max matrix')]);
  });
});
