/**
 * Issue 8 §4 on a GPU machine: the runtime on the CUDA backend.
 * 1. stories260K greedy "Once upon a time" on one GPU gives the golden text;
 * 2. a 2-GPU fair-copy plan (a copied head, NCCL all-reduce on the devices' streams) gives the tokens of
 *    one GPU, with and without SnapKV compression, and logits close to the CPU backend's;
 * 3. a generated fixture model with head dim 128 (GQA 8:2) on a prompt of several hundred tokens, where prefill runs the
 *    tensor-core prefill attention (stories260K's head dim 8 runs the element kernel), gives the tokens
 *    of the CPU backend, with the full policy, SnapKV (which reads the window scores) and H2O (the
 *    accumulated scores), and on 2 GPUs those of one; in a bf16 engine (every prefill product in bf16, the
 *    16-bit tensor-core kernels) its logits are within 1e-2 of the CPU backend's bf16 engine, each policy.
 * Bundled by bundle-device.sh; run by run-device.sh `runtime <model.gguf>`. Writes $OUT/runtime-check.json.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CompressionPolicy, fullPolicy, h2oPolicy, snapKvPolicy } from '@fairkv/compress';
import { createCluster, type Plan } from '@fairkv/core';
import { solvePlacement, syntheticHeavyTailedProfile } from '@fairkv/placement';
import {
  createFixtureModel,
  createInferenceEngine,
  type GenerationResult,
  type LoadedModel,
  loadModel,
} from '@fairkv/runtime';
import { createCudaBackend, createNcclRankCommunicators, probeCuda } from '../../src/index.js';

const GOLDEN =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.';
const PROMPT =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends';

async function run(
  model: LoadedModel,
  backend: 'cpu' | 'cuda',
  plan: Plan | undefined,
  policy: CompressionPolicy,
  prompt: string,
  maxTokens: number,
  maxPositions = 256,
  dtype: 'f32' | 'bf16' = 'f32',
) {
  const deviceCount = plan?.deviceCount ?? 1;
  const backends =
    backend === 'cuda' ? Array.from({ length: deviceCount }, (_, device) => createCudaBackend({ device })) : [];
  const communicators = backend === 'cuda' && deviceCount > 1 ? createNcclRankCommunicators(backends) : undefined;
  const engine = await createInferenceEngine({
    model,
    ...(plan ? { plan } : {}),
    policy,
    execution: 'inline',
    ...(backend === 'cuda' ? { backend: (device: number) => backends[device]! } : {}),
    ...(communicators ? { communicators } : {}),
    maxPositions,
    kvTokensPerDevice: 8192,
    dtype,
  });
  try {
    const started = performance.now();
    const result = await engine.generate(prompt, { maxTokens, returnLogits: true, stopAtEos: false }).result;
    return { result, seconds: (performance.now() - started) / 1000 };
  } finally {
    await engine.dispose();
    for (const communicator of communicators ?? []) communicator.dispose();
  }
}

function maxRelative(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((row, i) => {
    const other = b[i]!;
    let scale = 0;
    let diff = 0;
    for (let v = 0; v < row.length; v++) {
      scale = Math.max(scale, Math.abs(other[v]!));
      diff = Math.max(diff, Math.abs(row[v]! - other[v]!));
    }
    worst = Math.max(worst, diff / scale);
  });
  return worst;
}

/** Fair-copy over 2 H100s for a heavy-tailed profile of `model`'s shape (it copies at least one head). */
function twoGpuFairCopyPlan(model: LoadedModel, contextLength: number, seed: number): Plan {
  return solvePlacement({
    model: model.config,
    profile: syntheticHeavyTailedProfile({
      layerCount: model.config.layerCount,
      kvHeadCount: model.config.kvHeadCount,
      contextLength,
      sigma: 1.5,
      seed,
    }),
    cluster: createCluster('h100-sxm-80g', 2),
    batch: 4,
    solver: 'fair-copy',
  }).plan;
}

const modelPath = process.argv[2] ?? '.device/stories260K.gguf';
const probe = probeCuda();
if (!probe.available) throw new Error(probe.reason);
const model = await loadModel(modelPath);
const checks: Record<string, unknown>[] = [];
let failures = 0;
const check = (name: string, ok: boolean, details: Record<string, unknown>) => {
  checks.push({ name, ok, ...details });
  if (!ok) failures++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name} ${JSON.stringify(details)}`);
};

const golden = await run(model, 'cuda', undefined, fullPolicy(), 'Once upon a time', 60);
const goldenText = `Once upon a time${golden.result.text}`;
check('stories260K golden text on one GPU', goldenText.startsWith(GOLDEN), {
  text: goldenText.slice(0, GOLDEN.length + 20),
  seconds: golden.seconds,
});

const deviceCount = Math.min(2, probe.devices.length);
if (deviceCount < 2) {
  check('2-GPU fair-copy run', false, { reason: `only ${probe.devices.length} GPU(s) here` });
} else {
  const plan = twoGpuFairCopyPlan(model, 512, 14);
  const copies = plan.layers.flatMap((layer) => layer.heads).filter((head) => head.replicas.length > 1).length;
  for (const [name, policy] of [
    ['full', () => fullPolicy()],
    ['snapkv', () => snapKvPolicy({ averageBudget: 10, windowSize: 4, kernelSize: 3 })],
  ] as const) {
    const one: GenerationResult = (await run(model, 'cuda', undefined, policy(), PROMPT, 24)).result;
    const two: GenerationResult = (await run(model, 'cuda', plan, policy(), PROMPT, 24)).result;
    const cpu: GenerationResult = (await run(model, 'cpu', undefined, policy(), PROMPT, 24)).result;
    check(
      `2-GPU fair-copy (${copies} copied heads) equals 1 GPU, ${name}`,
      JSON.stringify(one.tokenIds) === JSON.stringify(two.tokenIds),
      {
        tokens: two.tokenIds.length,
        maxRelativeLogitDifference: maxRelative(two.logits!, one.logits!),
        keptTokensEqual: JSON.stringify(one.keptTokens) === JSON.stringify(two.keptTokens),
      },
    );
    check(`1 GPU equals the CPU backend, ${name}`, JSON.stringify(one.tokenIds) === JSON.stringify(cpu.tokenIds), {
      maxRelativeLogitDifference: maxRelative(one.logits!, cpu.logits!),
    });
  }
}
model.close();

// Prefill on the tensor-core kernel: a fixture model whose heads it takes (head dim 128), a prompt of
// several 64-row tiles.
const fixtureDir = mkdtempSync(join(tmpdir(), 'fairkv-fixture-'));
try {
  const files = await createFixtureModel(fixtureDir, {
    hiddenSize: 1024,
    queryHeadCount: 8,
    kvHeadCount: 2,
    headDim: 128,
    layerCount: 2,
    maxContext: 1024,
    huggingFace: false,
  });
  const fixture = await loadModel(files.ggufPath!);
  const prompt = Array.from({ length: 60 }, (_, i) => `the ${i % 7} little ${i % 5} girls play`).join(' ');
  // the second GPU launches the tensor-core prefill kernel too (its shared-memory attribute is per device)
  const plan = deviceCount >= 2 ? twoGpuFairCopyPlan(fixture, 1024, 3) : undefined;
  for (const [name, policy] of [
    ['full', () => fullPolicy()],
    ['snapkv', () => snapKvPolicy({ averageBudget: 64, windowSize: 32, kernelSize: 5 })],
    ['h2o', () => h2oPolicy()],
  ] as const) {
    const gpu = await run(fixture, 'cuda', undefined, policy(), prompt, 16, 1024);
    const cpu = await run(fixture, 'cpu', undefined, policy(), prompt, 16, 1024);
    check(
      `fixture head dim 128, ${gpu.result.promptTokenIds.length}-token prompt: 1 GPU equals the CPU backend, ${name}`,
      JSON.stringify(gpu.result.tokenIds) === JSON.stringify(cpu.result.tokenIds),
      {
        maxRelativeLogitDifference: maxRelative(gpu.result.logits!, cpu.result.logits!),
        keptTokensEqual: JSON.stringify(gpu.result.keptTokens) === JSON.stringify(cpu.result.keptTokens),
        gpuSeconds: gpu.seconds,
        cpuSeconds: cpu.seconds,
      },
    );
    if (plan) {
      const two = await run(fixture, 'cuda', plan, policy(), prompt, 16, 1024);
      check(
        `fixture head dim 128: 2-GPU fair-copy equals 1 GPU, ${name}`,
        JSON.stringify(two.result.tokenIds) === JSON.stringify(gpu.result.tokenIds),
        { maxRelativeLogitDifference: maxRelative(two.result.logits!, gpu.result.logits!) },
      );
    }
  }
  // A bf16 engine: prefill takes every product in bf16 (productRounding), on the GPU the 16-bit
  // tensor-core kernel (and H2O's accumulated scores its column kernel). The CPU rounds the probabilities
  // at another scale and sums in another order, so the logits agree within bf16's rounding, not bit for bit.
  for (const [name, policy] of [
    ['full', () => fullPolicy()],
    ['snapkv', () => snapKvPolicy({ averageBudget: 64, windowSize: 32, kernelSize: 5 })],
    ['h2o', () => h2oPolicy()],
  ] as const) {
    const gpu = await run(fixture, 'cuda', undefined, policy(), prompt, 16, 1024, 'bf16');
    const cpu = await run(fixture, 'cpu', undefined, policy(), prompt, 16, 1024, 'bf16');
    const difference = maxRelative(gpu.result.logits!, cpu.result.logits!);
    check(
      `fixture head dim 128, bf16 engine: 1 GPU within bf16 rounding of the CPU backend, ${name}`,
      difference <= 1e-2,
      {
        maxRelativeLogitDifference: difference,
        tokensEqual: JSON.stringify(gpu.result.tokenIds) === JSON.stringify(cpu.result.tokenIds),
        keptTokensEqual: JSON.stringify(gpu.result.keptTokens) === JSON.stringify(cpu.result.keptTokens),
        gpuSeconds: gpu.seconds,
        cpuSeconds: cpu.seconds,
      },
    );
  }
  fixture.close();
} finally {
  rmSync(fixtureDir, { recursive: true, force: true });
}

const out = process.env.OUT ?? '/tmp';
writeFileSync(
  `${out}/runtime-check.json`,
  `${JSON.stringify({ gpu: probe.devices.map((d) => d.name), checks, date: new Date().toISOString() }, null, 2)}\n`,
);
process.exit(failures > 0 ? 1 : 0);
