import { createCluster, type ModelConfig, type Plan } from '@fairkv/core';
import { solvePlacement, syntheticHeavyTailedProfile } from '@fairkv/placement';
import type { FixtureModelOptions } from '../model/fixture-model.js';

/**
 * A small fixture-model shape with GQA (group 2), so query blocks differ from kv blocks, and 3 kv heads
 * to spread over 3 devices.
 */
export const GQA_SHAPE = {
  layerCount: 2,
  hiddenSize: 96,
  queryHeadCount: 6,
  kvHeadCount: 3,
  headDim: 16,
  ffnSize: 160,
} as const satisfies FixtureModelOptions;

/**
 * Fair-copy over 3 CPU devices of a heavy-tailed profile for {@link GQA_SHAPE}: it copies heads, so some
 * devices host non-adjacent kv heads (several row and column blocks per weight) and some share one.
 */
export function threeDevicePlan(model: ModelConfig): Plan {
  return solvePlacement({
    model,
    profile: syntheticHeavyTailedProfile({ layerCount: 2, kvHeadCount: 3, contextLength: 512, sigma: 2, seed: 5 }),
    cluster: createCluster('cpu', 3),
    batch: 4,
    solver: 'fair-copy',
  }).plan;
}
