/**
 * Issue 8 §5b: end-to-end decode on several GPUs with each placement plan, measured next to predicted.
 * llama-3.1-8b shape with random bf16 weights, the DuoAttention Llama-3.1-8B head profile at sparsity
 * 0.5 (retrieval heads 32,768 tokens, streaming heads 384), each plan at the largest batch the cost model
 * says it fits. Requests are admitted without a prefill (their KV lengths come from the profile), then
 * decode steps run through the runtime's DeviceExecutor on CUDA backends with NCCL all-reduce.
 *
 *   npx tsx bench/cuda-decode-e2e/run.ts prepare [G]   (here: solve the plans, write .device/e2e-plans.json)
 *   node .device/e2e.mjs run .device/e2e-plans.json     (on the GPU machine, bundled by bundle-device.sh)
 */
import { execSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import {
  createCluster,
  duoAttentionProfile,
  getModelPreset,
  type HeadLoadProfile,
  type ModelConfig,
  type Plan,
  parseDuoAttentionGates,
} from '@fairkv/core';
import { seededRandom } from '@fairkv/placement';
import {
  DeviceExecutor,
  deviceShardsFromPlan,
  type HostWeight,
  ReplicaRouter,
  type ShardWeights,
} from '@fairkv/runtime';

const CONTEXT = 32768;
const NEW_TOKENS = 64;
const WARMUP_STEPS = 3;
const MEASURED_STEPS = 12;

interface Prepared {
  model: ModelConfig;
  profile: HeadLoadProfile;
  deviceCount: number;
  plans: { solver: string; plan: Plan; optimal: boolean; solveSeconds: number }[];
  commit: string;
}

async function prepare(deviceCount: number): Promise<void> {
  const { solvePlacement } = await import('@fairkv/placement');
  const { solveIlp } = await import('@fairkv/placement/ilp');
  const model = getModelPreset('llama-3.1-8b');
  const tsv = readFileSync(
    new URL(
      '../../../shared/profiles/duo-attention/Meta-Llama-3.1-8B-Instruct/full_attention_heads.tsv',
      import.meta.url,
    ),
    'utf8',
  );
  const profile = duoAttentionProfile(parseDuoAttentionGates(tsv), {
    contextLength: CONTEXT,
    selection: { sparsity: 0.5 },
    source: 'DuoAttention Meta-Llama-3.1-8B-Instruct',
  });
  const request = {
    model,
    profile,
    cluster: createCluster('h100-sxm-80g', deviceCount),
    batch: 'max' as const,
    newTokens: NEW_TOKENS,
    dtype: 'bf16' as const,
  };
  const plans: Prepared['plans'] = [];
  for (const solver of ['contiguous', 'greedy', 'fair-copy'] as const) {
    const result = solvePlacement({ ...request, solver });
    plans.push({ solver, plan: result.plan, optimal: result.optimal, solveSeconds: result.solveSeconds });
  }
  const ilp = await solveIlp(request);
  plans.push({ solver: 'ilp', plan: ilp.plan, optimal: ilp.optimal, solveSeconds: ilp.solveSeconds });
  const commit = execSync('git rev-parse HEAD').toString().trim();
  mkdirSync('.device', { recursive: true });
  writeFileSync(
    '.device/e2e-plans.json',
    JSON.stringify({ model, profile, deviceCount, plans, commit } satisfies Prepared),
  );
  for (const { solver, plan } of plans) {
    console.log(
      `${solver}: max batch ${plan.predicted.maxBatch}, predicted ${plan.predicted.throughputTokensPerSecond.toFixed(0)} tokens/s, step ${(plan.predicted.stepTimeSeconds * 1e3).toFixed(2)} ms`,
    );
  }
}

/** Seeded random bf16 bit patterns, tiled from a 1M-entry table (values ~ N(0, 0.02)). */
function randomWeights(seed: number): (count: number) => Uint16Array {
  const next = seededRandom(seed);
  const table = new Uint16Array(1 << 20);
  const scratch = new Float32Array(1);
  const bits = new Uint32Array(scratch.buffer);
  for (let i = 0; i < table.length; i++) {
    scratch[0] = (next() + next() + next() - 1.5) * 0.04;
    table[i] = bits[0]! >>> 16;
  }
  return (count) => {
    const out = new Uint16Array(count);
    for (let offset = 0; offset < count; offset += table.length) {
      const length = Math.min(table.length, count - offset);
      const start = Math.floor(next() * (table.length - length + 1));
      out.set(table.subarray(start, start + length), offset);
    }
    return out;
  };
}

function shardWeights(
  config: ModelConfig,
  shard: ReturnType<typeof deviceShardsFromPlan>['shards'][number],
  random: (count: number) => Uint16Array,
): ShardWeights {
  const ones = (count: number): HostWeight => new Uint16Array(count).fill(0x3f80);
  const { hiddenSize: hidden, headDim } = config;
  const group = config.queryHeadCount / config.kvHeadCount;
  const ffn = shard.ffnEnd - shard.ffnStart;
  return {
    tokenEmbedding: random(config.vocabSize * hidden),
    layers: shard.layers.map((heads) => ({
      attentionNorm: ones(hidden),
      wq: random(heads.length * group * headDim * hidden),
      wk: random(heads.length * headDim * hidden),
      wv: random(heads.length * headDim * hidden),
      wo: random(hidden * heads.length * group * headDim),
      ffnNorm: ones(hidden),
      wGate: random(ffn * hidden),
      wUp: random(ffn * hidden),
      wDown: random(hidden * ffn),
    })),
    ...(shard.computesLogits ? { outputNorm: ones(hidden), output: random(config.vocabSize * hidden) } : {}),
  };
}

async function runPlans(file: string): Promise<void> {
  const { createCudaBackend, createNcclRankCommunicators, probeCuda } = await import('@fairkv/kernels-cuda');
  const prepared = JSON.parse(readFileSync(file, 'utf8')) as Prepared;
  const probe = probeCuda();
  if (!probe.available) throw new Error(probe.reason);
  const { model: config, profile } = prepared;
  const results: Record<string, unknown>[] = [];
  for (const { solver, plan } of prepared.plans) {
    const batch = Math.floor(plan.predicted.maxBatch);
    const { shards, table } = deviceShardsFromPlan(plan, config);
    const router = new ReplicaRouter(table);
    const ids = Array.from({ length: batch }, (_, r) => `r${r}`);
    const routes = ids.map((id) => router.admit(id, profile.mean));
    const reserve = NEW_TOKENS;
    const blocks = shards.map(
      (shard) =>
        routes.reduce(
          (sum, route) =>
            sum +
            shard.layers.reduce(
              (layerSum, heads, l) =>
                layerSum +
                heads.reduce(
                  (headSum, head) =>
                    headSum +
                    (route[l]![head.kvHead] === head.replica
                      ? Math.ceil((profile.mean[l]![head.kvHead]! + reserve) / 16)
                      : 0),
                  0,
                ),
              0,
            ),
          0,
        ) + 64,
    );
    const started = performance.now();
    const backends = shards.map((shard) => createCudaBackend({ device: shard.device }));
    const communicators = createNcclRankCommunicators(backends);
    const executors: DeviceExecutor[] = [];
    try {
      for (const shard of shards) {
        executors.push(
          new DeviceExecutor({
            backend: backends[shard.device]!,
            config,
            shard,
            weights: shardWeights(config, shard, randomWeights(shard.device + 1)),
            communicator: communicators[shard.device]!,
            dtype: 'bf16',
            kvBlockCount: blocks[shard.device]!,
            kvBlockSize: 16,
            maxPositions: CONTEXT + NEW_TOKENS + 8,
            kvFill: 0.01,
          }),
        );
      }
      ids.forEach((id, r) => {
        executors.forEach((executor, d) => {
          const lengths = shards[d]!.layers.map((heads, l) =>
            heads.map((head) => (routes[r]![l]![head.kvHead] === head.replica ? profile.mean[l]![head.kvHead]! : null)),
          );
          executor.admitSynthetic(id, lengths, reserve);
        });
      });
      const setupSeconds = (performance.now() - started) / 1000;
      const stepSeconds: number[] = [];
      for (let step = 0; step < WARMUP_STEPS + MEASURED_STEPS; step++) {
        const rows = ids.map((requestId, r) => ({
          requestId,
          token: (r * 31 + step) % config.vocabSize,
          position: CONTEXT + step,
        }));
        const t0 = performance.now();
        await Promise.all(executors.map((executor) => executor.decode(rows, undefined, false)));
        if (step >= WARMUP_STEPS) stepSeconds.push((performance.now() - t0) / 1000);
      }
      stepSeconds.sort((a, b) => a - b);
      const median = stepSeconds[Math.floor(stepSeconds.length / 2)]!;
      const stats = executors.map((executor) => executor.stats());
      const entry = {
        solver,
        batch,
        setupSeconds,
        measured: { stepSecondsMedian: median, stepSecondsMin: stepSeconds[0], tokensPerSecond: batch / median },
        predicted: {
          stepSeconds: plan.predicted.stepTimeSeconds,
          tokensPerSecond: plan.predicted.throughputTokensPerSecond,
        },
        measuredOverPredictedStep: median / plan.predicted.stepTimeSeconds,
        copies: plan.layers.flatMap((layer) => layer.heads).filter((head) => head.replicas.length > 1).length,
        devices: stats.map((s) => ({
          device: s.device,
          kvBytes: s.kvBytes,
          allocatedBytes: s.allocatedBytes,
          busySeconds: s.layerBusySeconds.reduce((a, b) => a + b, 0),
        })),
      };
      results.push(entry);
      console.log(
        `${solver}: batch ${batch}, step ${(median * 1e3).toFixed(2)} ms (predicted ${(plan.predicted.stepTimeSeconds * 1e3).toFixed(2)} ms), ${(batch / median).toFixed(0)} tokens/s (predicted ${plan.predicted.throughputTokensPerSecond.toFixed(0)})`,
      );
    } catch (error) {
      results.push({ solver, batch, error: (error as Error).message });
      console.log(`${solver}: FAILED ${(error as Error).message}`);
    } finally {
      for (const executor of executors) executor.dispose();
      for (const communicator of communicators) communicator.dispose();
      for (const backend of backends) backend.dispose();
    }
  }
  const contiguous = results.find((r) => r.solver === 'contiguous') as
    | { measured?: { tokensPerSecond: number } }
    | undefined;
  for (const result of results as { measured?: { tokensPerSecond: number }; speedupOverContiguous?: number }[]) {
    if (result.measured && contiguous?.measured)
      result.speedupOverContiguous = result.measured.tokensPerSecond / contiguous.measured.tokensPerSecond;
  }
  const out = process.env.OUT ?? '.';
  writeFileSync(
    `${out}/cuda-decode-e2e.json`,
    `${JSON.stringify({ benchmark: 'cuda-decode-e2e', gpus: probe.devices.map((d) => d.name), deviceCount: prepared.deviceCount, model: 'llama-3.1-8b shape, random bf16 weights', profile: profile.source, context: CONTEXT, commit: prepared.commit, host: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }, date: new Date().toISOString(), results }, null, 2)}\n`,
  );
}

const [mode, argument] = process.argv.slice(2);
if (mode === 'prepare') await prepare(Number(argument ?? 2));
else if (mode === 'run') await runPlans(argument ?? '.device/e2e-plans.json');
else {
  console.log(
    'bench/cuda-decode-e2e needs a GPU machine: `prepare [G]` here, then `run` there (see the file header). Skipped.',
  );
}
