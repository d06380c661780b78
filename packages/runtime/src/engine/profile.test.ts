import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adaKvPolicy } from '@fairkv/compress';
import { createCluster, validateHeadLoadProfile } from '@fairkv/core';
import { solvePlacement } from '@fairkv/placement';
import { describe, expect, it } from 'vitest';
import {
  hasStories260k,
  STORIES_260K_PATH,
  STORIES_260K_SKIP_MESSAGE,
  storiesShapedProfile,
} from '../__fixtures__/shared.js';
import { loadModel } from '../model/load-model.js';
import { profileHeadLoads } from './profile.js';

describe.skipIf(!hasStories260k)('profileHeadLoads (stories260K)', () => {
  it('measures per-head Ada-KV budgets over real prompts', async () => {
    const model = await loadModel(STORIES_260K_PATH);
    try {
      const progress: number[] = [];
      const prompts = [
        'Once upon a time, there was a little girl named Lily. She loved to play outside in the park',
        'The cat sat on the mat and looked at the bird in the tree. The bird sang a happy song',
        'Tom had a red ball. He threw it to his friend Sam, and they played all day long in the sun',
      ];
      const profile = profileHeadLoads({
        model,
        prompts,
        // the kvpress variant keeps exactly H x averageBudget per layer (the FFY0 variant rounds per head)
        policy: adaKvPolicy({ averageBudget: 8, windowSize: 4, kernelSize: 3, variant: 'kvpress' }),
        generatedTokens: 16,
        onProgress: (done) => progress.push(done),
      });
      const result = validateHeadLoadProfile(await profile);
      expect(progress).toEqual([1, 2, 3]);
      expect(result.layerCount).toBe(5);
      expect(result.kvHeadCount).toBe(4);
      expect(result.sampleCount).toBe(3);
      expect(result.policy.name).toBe('ada-kv');
      // every layer keeps kvHeads x averageBudget tokens in total (+16 generated per head), spread unevenly
      for (const row of result.mean) expect(row.reduce((sum, tokens) => sum + tokens, 0)).toBeCloseTo(4 * (8 + 16), 6);
      expect(result.mean.some((row) => new Set(row).size > 1)).toBe(true);
      await expect(
        profileHeadLoads({ model, prompts: [], policy: adaKvPolicy({ averageBudget: 8, windowSize: 4 }) }),
      ).rejects.toThrow(/prompts: expected at least one prompt/);
      await expect(
        profileHeadLoads({ model, prompts: ['ok', []], policy: adaKvPolicy({ averageBudget: 8, windowSize: 4 }) }),
      ).rejects.toThrow(/prompts\[1\]: prompt: empty/);
    } finally {
      model.close();
    }
  });

  it('measures on another backend under a plan: device workers of a backend module, 2 devices, contiguous', async () => {
    const model = await loadModel(STORIES_260K_PATH);
    try {
      const prompts = [
        'Once upon a time, there was a little girl named Lily. She loved to play outside in the park',
        'Tom had a red ball. He threw it to his friend Sam, and they played all day long in the sun',
      ];
      const policy = adaKvPolicy({ averageBudget: 8, windowSize: 4, kernelSize: 3, variant: 'kvpress' });
      const plan = solvePlacement({
        model: model.config,
        profile: storiesShapedProfile(14),
        cluster: createCluster('cpu', 2),
        batch: 1,
        solver: 'contiguous',
      }).plan;
      const record = join(mkdtempSync(join(tmpdir(), 'fairkv-profile-')), 'setups.jsonl');
      const module = new URL('../__fixtures__/cpu-worker-device.ts', import.meta.url).href;
      const inThread = await profileHeadLoads({ model, prompts, policy, generatedTokens: 4, source: 'same' });
      const onWorkers = await profileHeadLoads({
        model,
        prompts,
        policy,
        generatedTokens: 4,
        source: 'same',
        backend: { module, options: { threads: 1, record } },
        plan,
        execution: 'workers',
        dtype: 'f32',
      });
      // the module's devices did the prefills: one per device of the plan, with its shard
      const setups = readFileSync(record, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(setups.map((setup) => [setup.device, setup.deviceCount]).sort()).toEqual([
        [0, 2],
        [1, 2],
      ]);
      // the same kept tokens as in this thread: each head's scores are computed whole on its device
      expect(onWorkers.sampleCount).toBe(2);
      for (const row of onWorkers.mean)
        expect(row.reduce((sum, tokens) => sum + tokens, 0)).toBeCloseTo(4 * (8 + 4), 6);
      expect(onWorkers.mean).toEqual(inThread.mean);
      expect(onWorkers.max).toEqual(inThread.max);
    } finally {
      model.close();
    }
  });
});
if (!hasStories260k) it.skip(STORIES_260K_SKIP_MESSAGE, () => {});
