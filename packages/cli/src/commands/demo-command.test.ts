import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runFairkv, TEST_CACHE_DIR } from '../__fixtures__/cli-process.js';

/** The demo and generate on the embedded default model: it needs nothing from ../shared. */
describe('fairkv demo and the embedded default model (subprocess)', () => {
  it('demo --json: both plans on worker devices, the same text, per-device KV and tokens/s, random weights labelled', async () => {
    const run = await runFairkv(['demo', '--devices', '2', '--requests', '3', '--max-tokens', '6', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(join(TEST_CACHE_DIR, 'r1', 'model.gguf'))).toBe(true);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({
      model: 'fairkv-default-random',
      randomWeights: true,
      devices: 2,
      requests: 3,
      policy: { name: 'duo-attention', syntheticGates: true },
      sameText: true,
    });
    expect(report.runs.map((r: { solver: string }) => r.solver)).toEqual(['contiguous', 'fair-copy']);
    for (const demoRun of report.runs) {
      expect(demoRun.devices).toHaveLength(2);
      expect(demoRun.plan.deviceCount).toBe(2);
      for (const device of demoRun.devices) expect(device.kvBytesPeak).toBeGreaterThan(0);
      expect(demoRun.decodeTokensPerSecond).toBeGreaterThan(0);
      expect(demoRun.predictedTokensPerSecond).toBeGreaterThan(0);
      expect(demoRun.texts).toHaveLength(3);
    }
    // the profile the fair-copy plan balanced is the one the contiguous run measured: DuoAttention keeps the
    // whole prompt in retrieval heads and sink + recent (4 + 16) in the rest, plus the 6 generated tokens
    const kept = new Set<number>(report.profile.mean.flat());
    expect(kept.has(26)).toBe(true);
    expect([...kept].some((tokens) => tokens > 26)).toBe(true);
  });

  it('generate on the default model streams the prompt and continuation and labels the model as random weights', async () => {
    const streamed = await runFairkv(['generate', '--prompt', 'Once upon a time', '--max-tokens', '5']);
    expect(streamed.code, streamed.stderr).toBe(0);
    expect(streamed.stdout.startsWith('Once upon a time')).toBe(true);
    expect(streamed.stdout.length).toBeGreaterThan('Once upon a time'.length);
    expect(streamed.stderr).toContain('fairkv-default-random');
    expect(streamed.stderr).toContain('RANDOM WEIGHTS');
    expect(streamed.stderr).toMatch(/5 tokens \(length\), [\d.,]+ tokens\/s decode/);
  });
});
