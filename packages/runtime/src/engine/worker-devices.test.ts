import { snapKvPolicy } from '@fairkv/compress';
import { createCluster } from '@fairkv/core';
import { solvePlacement } from '@fairkv/placement';
import { describe, expect, it } from 'vitest';
import {
  hasStories260k,
  STORIES_260K_PATH,
  STORIES_260K_SKIP_MESSAGE,
  storiesShapedProfile,
} from '../__fixtures__/shared.js';
import { loadModel } from '../model/load-model.js';
import { createInferenceEngine } from './create-engine.js';

describe.skipIf(!hasStories260k)('device worker threads', () => {
  it('a fair-copy plan on 2 worker devices gives the tokens and KV figures of in-thread execution', async () => {
    const model = await loadModel(STORIES_260K_PATH);
    try {
      const profile = storiesShapedProfile(14);
      const plan = solvePlacement({
        model: model.config,
        profile,
        cluster: createCluster('cpu', 2),
        batch: 4,
        solver: 'fair-copy',
      }).plan;
      const results = [];
      for (const execution of ['inline', 'workers'] as const) {
        const engine = await createInferenceEngine({
          model,
          plan,
          execution,
          policy: snapKvPolicy({ averageBudget: 8, windowSize: 4, kernelSize: 3 }),
          maxPositions: 96,
          kvTokensPerDevice: 4096,
        });
        try {
          await engine.startProfile();
          const streams = ['Once upon a time', 'The little dog was happy because'].map((prompt) =>
            engine.generate(prompt, { maxTokens: 10, stopAtEos: false }),
          );
          const tokens = (await Promise.all(streams.map((stream) => stream.result))).map((result) => result.tokenIds);
          const metrics = await engine.metrics();
          const profiles = await engine.stopProfile();
          for (const profile of profiles) {
            expect(profile.spanMilliseconds).toBeGreaterThan(0);
            expect(profile.busyMilliseconds).toBeLessThanOrEqual(profile.spanMilliseconds + 1e-6);
          }
          results.push({
            tokens,
            allocated: metrics.devices.map((device) => device.kvCapacityBytes),
            heads: metrics.devices.map((device) => device.shard.kvHeadsPerLayer),
            // the same operations, in the same numbers, whichever thread drives the device
            operations: profiles.map((profile) =>
              Object.fromEntries(profile.operations.map((operation) => [operation.name, operation.count])),
            ),
          });
        } finally {
          await engine.dispose();
        }
      }
      expect(results[1]).toEqual(results[0]);
      expect(results[0]!.operations[0]).toMatchObject({
        'ragged-decode-attention': expect.any(Number),
        matmul: expect.any(Number),
      });
    } finally {
      model.close();
    }
  });
});
if (!hasStories260k) it.skip(STORIES_260K_SKIP_MESSAGE, () => {});
