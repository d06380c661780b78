import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CpuBackend, createCpuBackend } from '@fairkv/kernels';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFixtureModel } from '../model/fixture-model.js';
import { loadModel } from '../model/load-model.js';
import type { LoadedModel } from '../model/loaded-model.js';
import { createInferenceEngine } from './create-engine.js';

const dir = mkdtempSync(join(tmpdir(), 'fairkv-graph-steps-'));
let model: LoadedModel;

beforeAll(async () => {
  const files = await createFixtureModel(dir, {
    seed: 5,
    layerCount: 3,
    hiddenSize: 64,
    queryHeadCount: 4,
    kvHeadCount: 2,
    headDim: 16,
    ffnSize: 96,
    maxContext: 128,
  });
  model = await loadModel(files.ggufPath!);
});
afterAll(() => {
  model?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An engine on one CPU device, with its backend. */
async function createEngine(graphSteps: boolean, maxBatch = 8) {
  let backend: CpuBackend | undefined;
  const engine = await createInferenceEngine({
    model,
    execution: 'inline',
    maxPositions: 128,
    kvTokensPerDevice: 4096,
    maxBatch,
    graphSteps,
    backend: () => {
      backend = createCpuBackend();
      return backend;
    },
  });
  return { engine, backend: backend! };
}

/** Generates for several prompts at once; returns each one's tokens and logits, and the backend. */
async function generate(graphSteps: boolean, prompts: number[][], maxTokens: number[], maxBatch = 8) {
  const { engine, backend } = await createEngine(graphSteps, maxBatch);
  try {
    const streams = prompts.map((prompt, i) =>
      engine.generate(prompt, { maxTokens: maxTokens[i]!, returnLogits: true, stopAtEos: false }),
    );
    const results = await Promise.all(streams.map((stream) => stream.result));
    const metrics = await engine.metrics();
    // the engine reports the device's graph steps where it runs them
    expect(metrics.devices[0]!.graphSteps).toEqual(graphSteps ? backend.graphStats() : undefined);
    return { results, stats: backend.graphStats() };
  } finally {
    await engine.dispose();
  }
}

describe('decode steps as graph steps', () => {
  it('replays a single request as recorded steps and gives the same tokens and logits, bit for bit', async () => {
    const eager = await generate(false, [[1, 9, 4, 17, 3]], [60]);
    const graphed = await generate(true, [[1, 9, 4, 17, 3]], [60]);
    expect(graphed.results[0]!.tokenIds).toEqual(eager.results[0]!.tokenIds);
    expect(graphed.results[0]!.logits).toEqual(eager.results[0]!.logits);
    expect(eager.stats).toMatchObject({ captures: 0, replays: 0 });
    // 59 decode steps: the first eager, the second captured, then replays (the blocks were reserved at
    // admission, so the block table, uploaded before each step, never changes the step's operations)
    expect(graphed.stats.replays).toBeGreaterThanOrEqual(50);
    expect(graphed.stats.fallbacks).toBeLessThanOrEqual(2);
    expect(graphed.stats.failedCaptures).toBe(0);
  });

  it('keeps continuous batching exact while requests join and leave (each change falls back once)', async () => {
    const prompts = [
      [2, 3, 5],
      [7, 11, 13, 17, 19, 23],
      [29, 31],
    ];
    const maxTokens = [40, 12, 25];
    const eager = await generate(false, prompts, maxTokens);
    const graphed = await generate(true, prompts, maxTokens);
    graphed.results.forEach((result, i) => {
      expect(result.tokenIds, `request ${i}`).toEqual(eager.results[i]!.tokenIds);
      expect(result.logits, `request ${i}`).toEqual(eager.results[i]!.logits);
    });
    expect(graphed.stats.replays).toBeGreaterThan(10);
  });

  it('keeps a recorded step per batch shape as the batch grows and shrinks', async () => {
    // A runs throughout; B and C join for 10 tokens each at different times: 1, 2, 1, 2, 1 rows
    const run = async (graphSteps: boolean) => {
      const { engine, backend } = await createEngine(graphSteps);
      try {
        const options = { returnLogits: true, stopAtEos: false } as const;
        const a = engine.generate([3, 1, 4], { ...options, maxTokens: 70 });
        const joined: Promise<{ tokenIds: number[] }>[] = [];
        for await (const chunk of a) {
          if (chunk.index === 10) joined.push(engine.generate([1, 5], { ...options, maxTokens: 10 }).result);
          if (chunk.index === 40) joined.push(engine.generate([9, 2, 6], { ...options, maxTokens: 10 }).result);
        }
        const results = [await a.result, ...(await Promise.all(joined))];
        return { tokens: results.map((result) => result.tokenIds), stats: backend.graphStats() };
      } finally {
        await engine.dispose();
      }
    };
    const eager = await run(false);
    const graphed = await run(true);
    expect(graphed.tokens).toEqual(eager.tokens);
    // no step falls back: a shape seen before replays at once. Captures: one per shape, plus the one-row
    // shape again after B's arrival grew the scratch buffers its first graph used (when the step name
    // ignored the shape: 5 captures, 4 fallbacks, 53 replays)
    expect(graphed.stats, JSON.stringify(graphed.stats)).toMatchObject({ captures: 3, fallbacks: 0 });
    expect(graphed.stats.replays, JSON.stringify(graphed.stats)).toBeGreaterThanOrEqual(60);
  });

  it('keeps replaying when a finished request is replaced by a new one (the same batch size)', async () => {
    // two at a time; each newcomer has another prompt length, so the block table changes size, but
    // the table buffer and the kernels' table length do not
    const prompts = [[2, 3], [5, 7, 11, 13, 17], [19, 23, 29], [31], [37, 41, 43, 47]];
    // K/V blocks of 16 tokens: the newcomers hold 1, 3, 2 and 1 blocks per sequence
    const maxTokens = [12, 80, 30, 20, 12];
    const eager = await generate(false, prompts, maxTokens, 2);
    const graphed = await generate(true, prompts, maxTokens, 2);
    graphed.results.forEach((result, i) => {
      expect(result.tokenIds, `request ${i}`).toEqual(eager.results[i]!.tokenIds);
      expect(result.logits, `request ${i}`).toEqual(eager.results[i]!.logits);
    });
    // the only fallback: when the batch shrinks to one request at the end
    expect(graphed.stats.fallbacks, JSON.stringify(graphed.stats)).toBeLessThanOrEqual(1);
    expect(graphed.stats.replays, JSON.stringify(graphed.stats)).toBeGreaterThanOrEqual(70);
  });
});
