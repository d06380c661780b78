import { adaKvPolicy, type CompressionPolicy, duoAttentionPolicy, fullPolicy, snapKvPolicy } from '@fairkv/compress';
import { createCluster, type Plan } from '@fairkv/core';
import { solvePlacement } from '@fairkv/placement';
import { solveIlp } from '@fairkv/placement/ilp';
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

const PROMPT =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends';
const MAX_TOKENS = 12;

const policies: Record<string, () => CompressionPolicy> = {
  full: () => fullPolicy(),
  snapkv: () => snapKvPolicy({ averageBudget: 10, windowSize: 4, kernelSize: 3 }),
  'ada-kv': () => adaKvPolicy({ averageBudget: 10, windowSize: 4, kernelSize: 3 }),
  'duo-attention': () =>
    duoAttentionPolicy({
      gates: [
        [0.9, 0.1, 0.2, 0.8],
        [0.1, 0.9, 0.3, 0.2],
        [0.7, 0.6, 0.1, 0.0],
        [0.2, 0.1, 0.9, 0.4],
        [0.0, 0.8, 0.3, 0.6],
      ],
      sinkSize: 2,
      recentSize: 6,
    }),
};

type Solver = 'contiguous' | 'greedy' | 'fair-copy' | 'ilp';

async function planFor(model: LoadedModel, solver: Solver, deviceCount: number): Promise<Plan> {
  const profile = storiesShapedProfile(deviceCount * 7);
  const request = { model: model.config, profile, cluster: createCluster('cpu', deviceCount), batch: 4 };
  if (solver === 'ilp') return (await solveIlp({ ...request, options: { worker: false } })).plan;
  return solvePlacement({ ...request, solver }).plan;
}

async function run(model: LoadedModel, plan: Plan | undefined, policy: CompressionPolicy): Promise<GenerationResult> {
  const engine = await createInferenceEngine({
    model,
    ...(plan ? { plan } : {}),
    policy,
    execution: 'inline',
    maxPositions: 128,
    kvTokensPerDevice: 4096,
  });
  try {
    return await engine.generate(PROMPT, { maxTokens: MAX_TOKENS, returnLogits: true, stopAtEos: false }).result;
  } finally {
    await engine.dispose();
  }
}

function maxRelativeDifference(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  }
  return diff / Math.max(scale, 1e-30);
}

describe.skipIf(!hasStories260k)('sharded execution equals one device (stories260K, CPU devices in one thread)', () => {
  let model: LoadedModel;
  const reference = new Map<string, GenerationResult>();
  beforeAll(async () => {
    model = await loadModel(STORIES_260K_PATH);
    for (const [name, policy] of Object.entries(policies)) reference.set(name, await run(model, undefined, policy()));
  });
  afterAll(() => model?.close());

  it('compression policies really drop tokens in the reference runs', () => {
    const promptLength = reference.get('full')!.promptTokenIds.length;
    expect(
      reference
        .get('full')!
        .keptTokens.flat()
        .every((kept) => kept === promptLength),
    ).toBe(true);
    for (const name of ['snapkv', 'ada-kv', 'duo-attention']) {
      const kept = reference.get(name)!.keptTokens.flat();
      expect(kept.some((tokens) => tokens < promptLength)).toBe(true);
    }
    // Ada-KV gives heads of one layer different budgets
    expect(reference.get('ada-kv')!.keptTokens.some((layer) => new Set(layer).size > 1)).toBe(true);
  });

  for (const deviceCount of [2, 4]) {
    for (const solver of ['contiguous', 'greedy', 'fair-copy', 'ilp'] as const) {
      it(`${solver} on ${deviceCount} devices: same tokens and logits within 1e-5 under every policy`, async () => {
        const plan = await planFor(model, solver, deviceCount);
        for (const [name, policy] of Object.entries(policies)) {
          const sharded = await run(model, plan, policy());
          const single = reference.get(name)!;
          expect(sharded.tokenIds, `${name}`).toEqual(single.tokenIds);
          expect(sharded.keptTokens, `${name}`).toEqual(single.keptTokens);
          sharded.logits!.forEach((logits, i) => {
            expect(maxRelativeDifference(logits, single.logits![i]!), `${name} position ${i}`).toBeLessThan(1e-5);
          });
        }
      });
    }
  }
});
if (!hasStories260k) it.skip(STORIES_260K_SKIP_MESSAGE, () => {});
