import { adaKvPolicy } from '@fairkv/compress';
import { CapacityError, createCluster, ValidationError } from '@fairkv/core';
import { solvePlacement } from '@fairkv/placement';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  hasStories260k,
  STORIES_260K_PATH,
  STORIES_260K_SKIP_MESSAGE,
  storiesShapedProfile,
} from '../__fixtures__/shared.js';
import { loadModel } from '../model/load-model.js';
import type { LoadedModel } from '../model/loaded-model.js';
import { createInferenceEngine } from './create-engine.js';
import type { GenerationResult } from './generation.js';

const PROMPTS = [
  'Once upon a time, there was a little girl named Lily. She loved to play',
  'One day, a big dog ran into the park and saw a red ball under the tree',
  'Tom and his mom went to the store to buy some food for the party',
];

describe.skipIf(!hasStories260k)('continuous batching and Fair-Copying routing (stories260K)', () => {
  let model: LoadedModel;
  beforeAll(async () => {
    model = await loadModel(STORIES_260K_PATH);
  });
  afterAll(() => model?.close());

  it('requests batched together on 4 devices give the tokens each gives alone on one device', async () => {
    const policy = () => adaKvPolicy({ averageBudget: 8, windowSize: 4, kernelSize: 3 });
    const solo: GenerationResult[] = [];
    for (const prompt of PROMPTS) {
      const engine = await createInferenceEngine({
        model,
        policy: policy(),
        maxPositions: 96,
        kvTokensPerDevice: 4096,
      });
      solo.push(await engine.generate(prompt, { maxTokens: 10 + solo.length * 3, stopAtEos: false }).result);
      await engine.dispose();
    }
    const profile = storiesShapedProfile(28);
    const plan = solvePlacement({
      model: model.config,
      profile,
      cluster: createCluster('cpu', 4),
      batch: 4,
      solver: 'fair-copy',
    }).plan;
    const copied = plan.layers.flatMap((layer, l) =>
      layer.heads.filter((head) => head.replicas.length > 1).map((head) => [l, head.kvHead] as const),
    );
    expect(copied.length).toBeGreaterThan(0);
    const engine = await createInferenceEngine({
      model,
      plan,
      policy: policy(),
      execution: 'inline',
      maxPositions: 96,
      kvTokensPerDevice: 4096,
    });
    try {
      // different lengths, so requests join and leave the batch at different steps
      const streams = PROMPTS.map((prompt, i) => engine.generate(prompt, { maxTokens: 10 + i * 3, stopAtEos: false }));
      const batched = await Promise.all(streams.map((stream) => stream.result));
      for (const [i, result] of batched.entries()) expect(result.tokenIds).toEqual(solo[i]!.tokenIds);
      // the router spreads requests over the replicas of copied heads
      const used = new Set(copied.flatMap(([l, h]) => batched.map((result) => `${l}.${h}.${result.replicas[l]![h]}`)));
      expect(used.size).toBeGreaterThan(copied.length);
      const metrics = await engine.metrics();
      expect(metrics.requests).toEqual({ waiting: 0, active: 0, completed: 3, refused: 0 });
      expect(metrics.devices.every((device) => device.kvBytes === 0)).toBe(true);
      expect(metrics.decodeSteps).toBe(15);
    } finally {
      await engine.dispose();
    }
  });

  it('waits for room, refuses what can never fit, and validates options', async () => {
    // 60 blocks of 16 tokens: each request needs 5 layers x 4 heads x ceil((prompt + 8) / 16) blocks,
    // 40 for the first and 60 for the second, so the second waits until the first is done
    const engine = await createInferenceEngine({ model, maxPositions: 96, kvTokensPerDevice: 60 * 16, maxBatch: 4 });
    try {
      const first = engine.generate(PROMPTS[0]!, { maxTokens: 8, stopAtEos: false });
      const second = engine.generate(PROMPTS[1]!, { maxTokens: 8, stopAtEos: false });
      const [a, b] = await Promise.all([first.result, second.result]);
      expect(a.tokenIds).toHaveLength(8);
      expect(b.tokenIds).toHaveLength(8);
      expect(b.timeToFirstTokenSeconds).toBeGreaterThan(a.timeToFirstTokenSeconds);
      const tooBig = engine.generate(PROMPTS[2]!, { maxTokens: 60, stopAtEos: false });
      await expect(tooBig.result).rejects.toThrow(CapacityError);
      await expect(tooBig.result).rejects.toThrow(/needs \d+ KV blocks on device 0, which has 60 in all/);
      expect(() => engine.generate('hi', { maxTokens: 0 })).toThrow(/\$\.maxTokens: expected an integer >= 1, got 0/);
      expect(() => engine.generate('hi', { topP: 1.5 })).toThrow(ValidationError);
      expect(() => engine.generate('hi', { maxTokens: 200 })).toThrow(/exceeds the context of 96 positions/);
      expect(() => engine.generate([1, 9999])).toThrow(/prompt\[1\]: token id 9999 outside \[0, 512\)/);
    } finally {
      await engine.dispose();
    }
  });

  it('stops at stop strings and on cancellation', async () => {
    const engine = await createInferenceEngine({ model, maxPositions: 128, kvTokensPerDevice: 4096 });
    try {
      const stopped = await engine.generate('Once upon a time', { maxTokens: 60, stop: ['Lily'] }).result;
      expect(stopped.finishReason).toBe('stop');
      expect(stopped.text).toBe(', there was a little girl named ');
      const controller = new AbortController();
      const stream = engine.generate('Once upon a time', { maxTokens: 60, signal: controller.signal });
      let count = 0;
      for await (const _chunk of stream) if (++count === 3) controller.abort();
      const result = await stream.result;
      expect(result.finishReason).toBe('cancelled');
      expect(result.tokenIds.length).toBeLessThan(10);
    } finally {
      await engine.dispose();
    }
  });
});
if (!hasStories260k) it.skip(STORIES_260K_SKIP_MESSAGE, () => {});
