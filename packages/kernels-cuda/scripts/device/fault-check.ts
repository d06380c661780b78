/**
 * Issue 8 on a 2-GPU machine: a GPU whose work fails part-way through a call must not leave the other
 * GPU waiting in an NCCL all-reduce (it used to: the run hung). Worker execution, as the CLI runs
 * several GPUs (a thread and an NCCL rank per GPU), with device 1's backend made to throw at one kernel
 * call (fault-worker-device.ts). For each scenario the request must fail with device 1's error within
 * seconds, the engine refuse further work, `dispose` return, and a fresh engine on the same GPUs in the
 * same process generate stories260K's golden text.
 * Scenario `connect`: device 1 fails to join the NCCL group while device 0 waits in its ncclCommInitRank;
 * creating the engine must fail with device 1's error within seconds (it used to hang).
 * Usage: node .device/cli/fault-check.mjs <model.gguf> <scenario> (prefill-first | decode-eager |
 * decode-graph | prefill-after-graphs | connect | none); writes $OUT/fault-<scenario>.json; exit code 1 when a
 * check fails.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCluster } from '@fairkv/core';
import { solvePlacement, syntheticHeavyTailedProfile } from '@fairkv/placement';
import { createInferenceEngine, type InferenceEngine, loadModel } from '@fairkv/runtime';
import { cudaWorkerBackend, probeCuda } from '../../src/index.js';
import type { FailRun } from './fault-worker-device.js';

const GOLDEN = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.';
const [modelPath = '.device/stories260K.gguf', scenario = 'prefill-first'] = process.argv.slice(2);
const probe = probeCuda();
if (!probe.available) throw new Error(probe.reason);
const model = await loadModel(modelPath);
const layers = model.config.layerCount;
// decode step s (0-based) runs the decode attention once per layer: step 0 runs eagerly, step 1 is
// captured into CUDA graphs, later steps replay them
const scenarios: Record<string, FailRun | undefined> = {
  'prefill-first': { device: 1, kernel: 'embedding-gather', call: 1 },
  'decode-eager': { device: 1, kernel: 'ragged-decode-attention', call: 3 },
  'decode-graph': { device: 1, kernel: 'ragged-decode-attention', call: 4 * layers + 2 },
  // a second request's prefill, while the first one decodes from CUDA graphs that captured all-reduces
  'prefill-after-graphs': { device: 1, kernel: 'prefill-attention', call: layers + 1 },
  connect: undefined,
  none: undefined,
};
if (!(scenario in scenarios)) throw new Error(`scenario: expected one of ${Object.keys(scenarios).join(', ')}`);
const failRun = scenarios[scenario];
const plan = solvePlacement({
  model: model.config,
  profile: syntheticHeavyTailedProfile({
    layerCount: layers,
    kvHeadCount: model.config.kvHeadCount,
    contextLength: 512,
    sigma: 1.5,
    seed: 14,
  }),
  cluster: createCluster('h100-sxm-80g', 2),
  batch: 4,
  solver: 'fair-copy',
}).plan;

const report: Record<string, unknown> = { scenario, failRun, gpus: probe.devices.map((d) => d.name) };
let failures = 0;
const check = (name: string, ok: boolean, details: Record<string, unknown> = {}) => {
  report[name] = { ok, ...details };
  if (!ok) failures++;
  console.log(`${ok ? 'PASS' : 'FAIL'} [${scenario}] ${name} ${JSON.stringify(details)}`);
};
const engineWith = (options: Record<string, unknown>): Promise<InferenceEngine> => {
  const cuda = cudaWorkerBackend();
  return createInferenceEngine({
    model,
    plan,
    execution: 'workers',
    backend: {
      module: new URL('./fault-worker-device.mjs', import.meta.url).href,
      options: { ...cuda.options, ...options },
    },
    maxPositions: 128,
  });
};

async function failingRequest(): Promise<void> {
  const engine = await engineWith(failRun ? { failRun } : {});
  let started = performance.now();
  try {
    const first = engine.generate('Once upon a time', { maxTokens: 30, stopAtEos: false });
    let request = first;
    if (scenario === 'prefill-after-graphs') {
      const chunks = first[Symbol.asyncIterator]();
      for (let token = 0; token < 6; token++) await chunks.next();
      started = performance.now();
      request = engine.generate('Once upon a time there was', { maxTokens: 8, stopAtEos: false });
      // the first request fails with the same error
      await Promise.allSettled([first.result]);
    }
    const result = await request.result;
    check(failRun ? 'the request fails with device 1 error' : 'the request completes', failRun === undefined, {
      text: result.text.slice(0, 60),
    });
  } catch (error) {
    const seconds = (performance.now() - started) / 1000;
    const message = (error as Error).message;
    check('the request fails with device 1 error', /^device 1: simulated launch failure/.test(message), { message });
    check('it fails within 20 s', seconds < 20, { seconds });
    let refused = '';
    try {
      engine.generate('Once');
    } catch (next) {
      refused = (next as Error).message;
    }
    check('the engine refuses further work', /the engine stopped after a device failed/.test(refused), { refused });
  }
  started = performance.now();
  await engine.dispose();
  check('dispose returns', true, { seconds: (performance.now() - started) / 1000 });
}

async function failingStart(): Promise<void> {
  const started = performance.now();
  try {
    const engine = await engineWith({ failConnect: 1 });
    await engine.dispose();
    check('creating the engine fails with device 1 error', false);
  } catch (error) {
    const message = (error as Error).message;
    check('creating the engine fails with device 1 error', /simulated NCCL init failure on device 1/.test(message), {
      message,
    });
    check('it fails within 20 s', (performance.now() - started) / 1000 < 20, {
      seconds: (performance.now() - started) / 1000,
    });
  }
}

if (scenario === 'connect') await failingStart();
else await failingRequest();

const fresh = await engineWith({});
try {
  const text = `Once upon a time${(await fresh.generate('Once upon a time', { maxTokens: 30, stopAtEos: false }).result).text}`;
  check('a fresh 2-GPU engine in the same process gives the golden text', text.startsWith(GOLDEN), {
    text: text.slice(0, GOLDEN.length + 10),
  });
} finally {
  await fresh.dispose();
}
model.close();
writeFileSync(join(process.env.OUT ?? '.', `fault-${scenario}.json`), `${JSON.stringify(report, null, 2)}\n`);
process.exitCode = failures === 0 ? 0 : 1;
