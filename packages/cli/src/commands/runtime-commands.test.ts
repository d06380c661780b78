import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseHeadLoadProfile } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import {
  errorLines,
  hasStories260k,
  runFairkv,
  SHARED_SKIP_MESSAGE,
  STORIES_260K,
  temporaryFolder,
} from '../__fixtures__/cli-process.js';

/** Greedy continuation of "Once upon a time" by stories260K (../shared/models/README.md). */
const GOLDEN =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.';

describe.skipIf(!hasStories260k)('profile, plan, generate, bench and inspect on stories260K (subprocess)', () => {
  const folder = temporaryFolder('runtime');
  const profilePath = join(folder, 'profile.json');
  const planPath = join(folder, 'plan.json');

  it('profile measures the head loads of a prompt file; plan balances them; inspect model reports the file', async () => {
    const prompts = join(folder, 'prompts.jsonl');
    writeFileSync(
      prompts,
      [
        JSON.stringify('Once upon a time, there was a little girl named Lily. She loved to play outside.'),
        JSON.stringify({ prompt: 'The little dog was happy because he found a big bone in the garden.' }),
        JSON.stringify({ text: 'Tom and his mom went to the park to play with a red ball.' }),
      ].join('\n'),
    );
    const profiled = await runFairkv([
      'profile',
      '--model',
      STORIES_260K,
      '--policy',
      'snapkv',
      '--budget',
      '8',
      '--prompts',
      prompts,
      '--new-tokens',
      '16',
      '--out',
      profilePath,
    ]);
    expect(profiled.code, profiled.stderr).toBe(0);
    expect(profiled.stdout).toMatch(/layer\s+mean kept\s+min head\s+max head/);
    const profile = parseHeadLoadProfile(readFileSync(profilePath, 'utf8'), profilePath);
    expect([profile.layerCount, profile.kvHeadCount, profile.sampleCount]).toEqual([5, 4, 3]);
    // SnapKV keeps exactly the budget in every head, plus the 16 generated tokens
    expect(new Set(profile.mean.flat())).toEqual(new Set([24]));
    expect(profile.policy).toMatchObject({ name: 'snapkv', settings: { averageBudget: 8, windowSize: 4 } });

    // sharded over 2 worker devices (the contiguous plan), Ada-KV's uneven budgets come out the same
    const adaKv = (...extra: string[]) =>
      runFairkv([
        'profile',
        '--model',
        STORIES_260K,
        '--policy',
        'ada-kv',
        '--budget',
        '8',
        '--prompts',
        prompts,
        '--json',
        ...extra,
      ]);
    const [inThread, sharded] = [await adaKv(), await adaKv('--devices', '2')];
    expect(sharded.code, sharded.stderr).toBe(0);
    const [oneDevice, twoDevices] = [JSON.parse(inThread.stdout), JSON.parse(sharded.stdout)];
    expect(new Set(oneDevice.mean.flat()).size).toBeGreaterThan(1);
    expect(twoDevices.mean).toEqual(oneDevice.mean);
    expect(twoDevices.source).toMatch(/; cpu, f32, contiguous plan on 2 devices\)$/);
    const unsharded = await adaKv('--cluster', 'h100-sxm-80g');
    expect(unsharded.code).toBe(1);
    expect(unsharded.stderr).toMatch(/--cluster applies to --devices above 1 or --backend cuda/);
    const webgpu = await adaKv('--backend', 'webgpu');
    expect(webgpu.code).toBe(2);
    expect(errorLines(webgpu)).toEqual([
      expect.stringContaining('--backend webgpu: the runtime cannot run models on webgpu yet'),
    ]);

    const planned = await runFairkv([
      'plan',
      '--model',
      STORIES_260K,
      '--profile',
      profilePath,
      '--cluster',
      'cpu',
      '--devices',
      '2',
      '--solver',
      'contiguous,fair-copy',
      '--batch',
      '4',
      '--dtype',
      'f32',
      '--out',
      planPath,
    ]);
    expect(planned.code, planned.stderr).toBe(0);
    expect(JSON.parse(readFileSync(planPath, 'utf8'))).toMatchObject({ version: 1, deviceCount: 2 });

    const inspected = await runFairkv(['inspect', 'model', STORIES_260K, '--json']);
    expect(inspected.code, inspected.stderr).toBe(0);
    const report = JSON.parse(inspected.stdout);
    expect(report).toMatchObject({
      format: 'gguf',
      randomWeights: false,
      config: { layerCount: 5, queryHeadCount: 8, kvHeadCount: 4, headDim: 8, vocabSize: 512 },
      tokenizer: { kind: 'sentencepiece-bpe', vocabSize: 512 },
    });
    expect(report.sizes.f32.kvBytesPerToken).toBe(2 * 8 * 4 * 5 * 4);
    expect(report.gpuDtype).toBe('f32');

    const truncated = join(folder, 'truncated.gguf');
    writeFileSync(truncated, readFileSync(STORIES_260K).subarray(0, 300));
    const corrupt = await runFairkv(['generate', '--model', truncated, '--prompt', 'Once']);
    expect(corrupt.code).toBe(2);
    expect(errorLines(corrupt)).toEqual([expect.stringContaining(`--model ${truncated}`)]);
  });

  it('generate streams the golden text on one device, and the same tokens sharded by a plan on 2 worker devices', async () => {
    /** `fairkv generate` of 40 tokens after "Once upon a time" on stories260K. */
    const generate = (...extra: string[]) =>
      runFairkv(['generate', '--model', STORIES_260K, '--prompt', 'Once upon a time', '--max-tokens', '40', ...extra]);
    const single = await generate();
    expect(single.code, single.stderr).toBe(0);
    expect(single.stdout.trim()).toBe(GOLDEN);
    expect(single.stderr).toMatch(/device\s+kv heads\s+KV peak/);
    expect(single.stderr).toMatch(/40 tokens \(length\), [\d.,]+ tokens\/s decode/);

    // the plan `fairkv plan` wrote, on 2 worker devices, with a policy whose budget covers the prompt: same tokens
    const onPlan = (...extra: string[]) => generate('--plan', planPath, '--json', ...extra);
    const sharded = await onPlan('--policy', 'snapkv', '--budget', '64');
    expect(sharded.code, sharded.stderr).toBe(0);
    const result = JSON.parse(sharded.stdout);
    expect(`Once upon a time${result.text}`).toBe(GOLDEN);
    expect(result.plan).toMatchObject({ deviceCount: 2 });
    expect(result.policy).toMatchObject({ name: 'snapkv', settings: { averageBudget: 64 } });
    expect(result.promptTokens).toBeGreaterThan(4);
    expect(new Set(result.keptTokens.flat())).toEqual(new Set([result.promptTokens]));
    expect(result.devices).toHaveLength(2);
    for (const device of result.devices) expect(device.kvBytesPeak).toBeGreaterThan(0);
    expect(result.decodeTokensPerSecond).toBeGreaterThan(0);
    expect(result).toMatchObject({ backend: { name: 'cpu' }, dtype: 'f32' });

    // bf16 weights and KV: the same golden text here, half the KV pool bytes
    const [half, full] = [await onPlan('--dtype', 'bf16'), await onPlan()];
    expect(half.code, half.stderr).toBe(0);
    const halfResult = JSON.parse(half.stdout);
    expect(halfResult.dtype).toBe('bf16');
    expect(`Once upon a time${halfResult.text}`).toBe(GOLDEN);
    const capacity = (run: { stdout: string }) =>
      (JSON.parse(run.stdout).devices as { kvCapacityBytes: number }[]).map((device) => device.kvCapacityBytes);
    expect(capacity(half)).toEqual(capacity(full).map((bytes) => bytes / 2));

    // --cluster: the device type a solved plan is fitted and timed for; a --plan carries its own
    const clustered = await generate('--devices', '2', '--solver', 'greedy', '--cluster', 'h100-sxm-80g', '--json');
    expect(clustered.code, clustered.stderr).toBe(0);
    expect(JSON.parse(clustered.stdout).plan).toMatchObject({ solver: 'greedy', cluster: 'h100-sxm-80g' });
    const conflicting = await onPlan('--cluster', 'h100-sxm-80g');
    expect(conflicting.code).toBe(1);
    expect(conflicting.stderr).toMatch(/--cluster applies to --devices and --solver, not to --plan/);
  });

  /** `fairkv bench` on stories260K over 2 devices, 2 requests at a time, writing `out`. */
  const bench = (out: string, ...args: string[]) =>
    runFairkv(['bench', '--model', STORIES_260K, '--devices', '2', '--concurrency', '2', '--out', out, ...args]);

  it('bench prints measured beside predicted throughput per solver and writes JSON', async () => {
    const out = join(folder, 'bench.json');
    const run = await bench(
      out,
      '--solvers',
      'contiguous,fair-copy',
      '--policy',
      'snapkv',
      '--budget',
      '8',
      '--requests',
      '4',
      '--max-tokens',
      '4',
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/solver\s+measured tok\/s\s+predicted tok\/s/);
    expect(run.stdout).toContain('loads the plans balance: kept tokens of 4 requests under the contiguous plan');
    const document = JSON.parse(readFileSync(out, 'utf8'));
    expect(document).toMatchObject({ model: 'tinyllamas-stories-260k', devices: 2, requests: 4, concurrency: 2 });
    // one unmeasured batch first: the measured figures count the 4 requests only
    expect(document.warmup).toEqual({ requests: 2, maxTokens: 2, stopAtEos: false });
    expect(document.machine.cores).toBeGreaterThan(0);
    expect(document.results.map((result: { solver: string }) => result.solver)).toEqual(['contiguous', 'fair-copy']);
    // the loads fair-copy balances were observed in the contiguous run itself (FairKV's workflow), and
    // both plans are scored with them
    expect(document.profileSource).toBe('kept tokens of 4 requests under the contiguous plan (cpu, f32, 2 devices)');
    for (const result of document.results) expect(result.plan.profileSource).toBe(document.profileSource);
    for (const result of document.results) {
      expect(result.measured.generatedTokens).toBe(16);
      expect(result.measured.decodeTokensPerSecond).toBeGreaterThan(0);
      expect(result.predicted.throughputTokensPerSecond).toBeGreaterThan(0);
      expect(result.predicted.batch).toBe(2);
    }
  });

  it('bench --calibrate fits the layer overhead on the first run and predicts every plan with it', async () => {
    const out = join(folder, 'bench-calibrated.json');
    const run = await bench(
      out,
      '--policy',
      'snapkv',
      '--budget',
      '8',
      '--requests',
      '2',
      '--max-tokens',
      '4',
      '--calibrate',
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(
      /its layer overhead fitted on contiguous's run \([\d,.]+ µs at bandwidth efficiency 1\)/,
    );
    const document = JSON.parse(readFileSync(out, 'utf8'));
    const { calibration, results } = document;
    expect(calibration).toMatchObject({ solver: 'contiguous', bandwidthEfficiency: 1, clamped: false });
    // CPU workers take far longer per layer than their bytes: hundreds of µs, not the 10 µs default
    expect(calibration.layerOverheadSeconds).toBeGreaterThan(20e-6);
    const [first, second] = results;
    expect(first.predicted.throughputTokensPerSecond / first.measured.decodeTokensPerSecond).toBeCloseTo(1, 9);
    // 5 layers and the output stage, each with the fitted overhead
    expect(second.predicted.stepTimeSeconds).toBeGreaterThan(6 * calibration.layerOverheadSeconds);
    const both = await bench(join(folder, 'unused.json'), '--calibrate', '--layer-overhead', '200');
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/--calibrate fits the layer overhead that --layer-overhead sets: give one/);
    // the constants it wrote serve another run's predictions
    const again = await bench(
      join(folder, 'bench-again.json'),
      '--requests',
      '2',
      '--max-tokens',
      '2',
      '--calibration',
      out,
    );
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`with the constants of ${out}`);
    const twice = await bench(join(folder, 'unused.json'), '--calibrate', '--calibration', out);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/--calibrate fits the constants that --calibration reads: give one/);
    const nothing = await bench(join(folder, 'unused.json'), '--calibrate', '--requests', '2', '--max-tokens', '1');
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/--calibrate: the contiguous run took no decode step to fit on \(--max-tokens 1\)/);
  });

  it('bench --kernel-profile reports the time of each operation on every device', async () => {
    const out = join(folder, 'bench-profile.json');
    const run = await bench(
      out,
      '--solvers',
      'fair-copy',
      '--requests',
      '2',
      '--max-tokens',
      '3',
      '--kernel-profile',
      '--no-warmup',
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/fair-copy: device time per operation/);
    expect(run.stdout).toMatch(/longest operations/);
    const written = JSON.parse(readFileSync(out, 'utf8'));
    expect(written.warmup).toBe(false);
    const [result] = written.results as {
      measured: { operationProfiles: { operations: { name: string; count: number }[]; busyMilliseconds: number }[] };
    }[];
    const profiles = result!.measured.operationProfiles;
    expect(profiles).toHaveLength(2);
    const counts = profiles.map((profile) => Object.fromEntries(profile.operations.map((o) => [o.name, o.count])));
    // every device runs every layer's attention and both fused projections in each step
    expect(counts[0]!['ragged-decode-attention']).toBeGreaterThan(0);
    expect(counts[1]!['ragged-decode-attention']).toBe(counts[0]!['ragged-decode-attention']);
    expect(counts[0]!.matmul).toBeGreaterThan(counts[1]!.matmul!); // device 0 also runs the LM head
    for (const profile of profiles) expect(profile.busyMilliseconds).toBeGreaterThan(0);
  });
});
if (!hasStories260k) it.skip(SHARED_SKIP_MESSAGE, () => {});

describe('inspect backends (subprocess)', () => {
  it('reports cpu as available and says why cuda and webgpu are or are not', async () => {
    const run = await runFairkv(['inspect', 'backends', '--json']);
    expect(run.code, run.stderr).toBe(0);
    // Dawn's native Vulkan warnings stay in the probe's child process
    expect(run.stderr).not.toMatch(/vkCreateInstance|Warning:/);
    const { backends } = JSON.parse(run.stdout) as {
      backends: { name: string; available: boolean; runtimeSupported: boolean; detail: string }[];
    };
    expect(backends.map((backend) => backend.name)).toEqual(['cpu', 'cuda', 'webgpu']);
    expect(backends[0]).toMatchObject({ available: true, runtimeSupported: true });
    for (const backend of backends) expect(backend.detail.length).toBeGreaterThan(10);
  });
});
