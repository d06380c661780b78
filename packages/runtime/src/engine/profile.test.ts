import { adaKvPolicy } from '@fairkv/compress';
import { validateHeadLoadProfile } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { hasStories260k, STORIES_260K_PATH, STORIES_260K_SKIP_MESSAGE } from '../__fixtures__/shared.js';
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
});
if (!hasStories260k) it.skip(STORIES_260K_SKIP_MESSAGE, () => {});
