import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { snapKvPolicy } from '@fairkv/compress';
import { loadModel } from '@fairkv/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasStories260k, SHARED_SKIP_MESSAGE, STORIES_260K, temporaryFolder } from './__fixtures__/cli-process.js';
import { exitCodeOf } from './cli-error.js';
import { choosePlan } from './engine-plan.js';

describe.skipIf(!hasStories260k)('choosing the plan of generate (stories260K, in-process)', () => {
  let model: Awaited<ReturnType<typeof loadModel>>;
  beforeAll(async () => {
    model = await loadModel(STORIES_260K);
  });
  afterAll(() => model.close());
  const policy = snapKvPolicy({ averageBudget: 6, windowSize: 2 });
  const prompts = ['Once upon a time, there was a little girl named Lily. She loved to play'];
  const base = { policy, prompts, maxTokens: 8, batch: 1 };

  it('one device without flags; contiguous for --devices alone; --solver measures a profile on the prompt', async () => {
    expect(await choosePlan({ ...base, model, flags: {} })).toMatchObject({ plan: undefined, deviceCount: 1 });
    const contiguous = await choosePlan({ ...base, model, flags: { devices: 2 } });
    expect(contiguous.plan).toMatchObject({ solver: 'contiguous', deviceCount: 2 });
    expect(contiguous.description).toContain('uniform');
    let measured = 0;
    const fairCopy = await choosePlan({
      ...base,
      model,
      flags: { devices: 2, solver: 'fair-copy' },
      onProfileProgress: (done) => {
        measured = done;
      },
    });
    expect(measured).toBe(1);
    expect(fairCopy.plan).toMatchObject({ solver: 'fair-copy', deviceCount: 2 });
    // SnapKV keeps 6 tokens per head, plus the 8 generated ones
    expect(new Set(fairCopy.profile!.mean.flat())).toEqual(new Set([14]));
  });

  it('plans for the devices devicesFor names: their cluster preset and dtype, the profile measured where it says', async () => {
    const record = join(temporaryFolder('engine-plan-profile-on'), 'setups.jsonl');
    const module = new URL('../../runtime/src/__fixtures__/cpu-worker-device.ts', import.meta.url).href;
    const asked: number[] = [];
    const onWorkers = await choosePlan({
      ...base,
      model,
      flags: { devices: 2, solver: 'fair-copy' },
      devicesFor: async (deviceCount) => {
        asked.push(deviceCount);
        const backend = { module, options: { threads: 1, record } };
        return { cluster: 'cpu', profileOn: { backend, execution: 'workers', dtype: 'f32', name: 'cpu module' } };
      },
    });
    expect(asked).toEqual([2]);
    expect(onWorkers.profile!.source).toBe(
      'measured on 1 prompt(s) with snapkv on cpu module, contiguous plan on 2 devices',
    );
    // the module's two devices ran the prefill, and saw the loads this thread sees
    expect(readFileSync(record, 'utf8').trim().split('\n')).toHaveLength(2);
    const inThread = await choosePlan({ ...base, model, flags: { devices: 2, solver: 'fair-copy' } });
    expect(onWorkers.profile!.mean).toEqual(inThread.profile!.mean);
    expect(onWorkers.plan!.layers).toEqual(inThread.plan!.layers);
    expect(inThread.description).toMatch(/^fair-copy plan on 2 CPU worker devices/);
    // GPUs: the plan is checked and timed for their preset, in the run's dtype
    const onGpus = await choosePlan({
      ...base,
      model,
      flags: { devices: 2, solver: 'greedy' },
      dtype: 'bf16',
      devicesFor: async () => ({ cluster: 'h100-sxm-80g' }),
    });
    expect(onGpus.plan).toMatchObject({ cluster: 'h100-sxm-80g', dtype: 'bf16', deviceCount: 2 });
    expect(onGpus.description).toMatch(/^greedy plan on 2 H100 SXM 80GB devices/);
    // a dtype the devices name (generate's --dtype auto, resolved with the backend) is the one planned in
    const inTheirDtype = await choosePlan({
      ...base,
      model,
      flags: { devices: 2, solver: 'greedy' },
      dtype: 'bf16',
      devicesFor: async () => ({ cluster: 'h100-sxm-80g', dtype: 'f16' }),
    });
    expect(inTheirDtype.plan).toMatchObject({ cluster: 'h100-sxm-80g', dtype: 'f16' });
    // contiguous for --devices alone is planned for them too, with no profile to measure
    const contiguous = await choosePlan({
      ...base,
      model,
      flags: { devices: 2 },
      devicesFor: async (deviceCount) => {
        asked.push(deviceCount);
        return {
          cluster: 'h100-sxm-80g',
          profileOn: { backend: 'cpu', execution: 'inline', dtype: 'f32', name: 'unused' },
        };
      },
    });
    expect(asked).toEqual([2, 2]);
    expect(contiguous.plan).toMatchObject({ solver: 'contiguous', cluster: 'h100-sxm-80g' });
    expect(contiguous.profile!.source).toMatch(/^uniform/);
  });

  it('reads --plan files and names conflicts and mismatches', async () => {
    const folder = temporaryFolder('engine-plan');
    const contiguous = (await choosePlan({ ...base, model, flags: { devices: 2 } })).plan!;
    const planPath = join(folder, 'plan.json');
    writeFileSync(planPath, JSON.stringify(contiguous));
    const chosen = await choosePlan({ ...base, model, flags: { plan: planPath } });
    expect(chosen.deviceCount).toBe(2);
    const failure = async (flags: Parameters<typeof choosePlan>[0]['flags']) => {
      try {
        await choosePlan({ ...base, model, flags });
      } catch (error) {
        return { code: exitCodeOf(error), message: (error as Error).message };
      }
      throw new Error('expected a failure');
    };
    expect(await failure({ plan: planPath, devices: 4 })).toEqual({
      code: 2,
      message: `--devices 4: the plan ${planPath} has 2 devices`,
    });
    expect(await failure({ plan: planPath, solver: 'greedy' })).toMatchObject({ code: 1, message: /exclusive/ });
    expect(await failure({ devices: 2, profile: 'p.json' })).toMatchObject({
      code: 1,
      message: /--profile needs --solver/,
    });
    const wrongModel = { ...contiguous, layers: contiguous.layers.slice(1) };
    writeFileSync(planPath, JSON.stringify(wrongModel));
    expect(await failure({ plan: planPath })).toMatchObject({ code: 2, message: /--plan .*expected 5 layers/ });
    expect(await failure({ devices: 8, solver: 'contiguous' })).toMatchObject({ code: 2 });
  });
});
if (!hasStories260k) it.skip(SHARED_SKIP_MESSAGE, () => {});
