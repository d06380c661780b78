/**
 * Issue 8 §5b: end-to-end decode on several GPUs with each placement plan, measured next to predicted.
 * llama-3.1-8b shape with random bf16 weights, the DuoAttention Llama-3.1-8B head profile at sparsity
 * 0.5 (FAIRKV_E2E_SPARSITY; retrieval heads 32,768 tokens, streaming heads 384; FAIRKV_E2E_GATES picks
 * another gate file of ../shared and its model's shape), each plan at the largest batch the cost model
 * says it fits. Requests are admitted without a prefill (their KV lengths come from the profile), then
 * decode steps run through the runtime's DeviceExecutor on CUDA backends with NCCL all-reduce, each
 * plan driven two ways in the same run: `workers` (a runtime worker thread and an NCCL rank per GPU, as
 * createInferenceEngine runs CUDA devices) and `inline` (every GPU from this thread).
 *
 *   npx tsx bench/cuda-decode-e2e/run.ts prepare [G]   (here: solve the plans, write .device/e2e-plans-G.json)
 *   npx tsx bench/cuda-decode-e2e/run.ts calibrate [G] [results.json] [solver]   (here: fit the cost model's
 *   bandwidth efficiency and per-layer overhead on one plan's KV sweep, predict the others)
 *   node .device/e2e.mjs run .device/e2e-plans-G.json [workers,inline]   (on the GPU machine, bundled by
 *   bundle-device.sh; writes $OUT/cuda-decode-e2e-G.json)
 *   npx tsx bench/cuda-decode-e2e/run.ts ceiling   (here: what the cost model allows fair-copy over
 *   contiguous for this workload, by GPU count, sparsity and constants; writes results/cuda-decode-e2e-ceiling.json)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createCluster,
  duoAttentionProfile,
  getModelPreset,
  type HeadLoadProfile,
  type ModelConfig,
  type Plan,
  parseDuoAttentionGates,
} from '@fairkv/core';
import type { BackendProfile } from '@fairkv/kernels';
import {
  createWorkerDevices,
  DeviceExecutor,
  type DeviceHandle,
  type DeviceShard,
  deviceShardsFromPlan,
  dummyShardWeights,
  type HostedHead,
  inlineDeviceHandle,
  ReplicaRouter,
} from '@fairkv/runtime';
import { positiveIntegersFromEnv } from '../env-integers.js';
import { gitCommit } from '../git-commit.js';

const CONTEXT = 32768;
const NEW_TOKENS = 64;
const WARMUP_STEPS = 3;
const MEASURED_STEPS = 12;
/**
 * KV length scales to run each plan at (FAIRKV_E2E_KV_SCALES, default 1): the step time against the
 * KV bytes read separates the fixed part of a step (weights, launches, all-reduces) from KV reading.
 */
const KV_SCALES = (process.env.FAIRKV_E2E_KV_SCALES ?? '1').split(',').map(Number);
/**
 * Steps run with every device's operations timed (CUDA events), after the measured steps
 * (FAIRKV_E2E_PROFILE_STEPS, default 0: off). Their times are not in the measured figures.
 */
const PROFILE_STEPS = Number(process.env.FAIRKV_E2E_PROFILE_STEPS ?? '0');
/** A DuoAttention sparsity read from environment variable `name`: a number in (0, 1), else an error naming both. */
function sparsityFrom(name: string, text: string): number {
  const value = Number(text);
  if (!(value > 0 && value < 1)) throw new Error(`${name}: expected a number in (0, 1), got ${JSON.stringify(text)}`);
  return value;
}
/** DuoAttention sparsity of the profile `prepare` solves for (FAIRKV_E2E_SPARSITY; the issue's workload: 0.5). */
const SPARSITY = sparsityFrom('FAIRKV_E2E_SPARSITY', process.env.FAIRKV_E2E_SPARSITY ?? '0.5');

interface Prepared {
  model: ModelConfig;
  profile: HeadLoadProfile;
  deviceCount: number;
  plans: { solver: string; plan: Plan; optimal: boolean; solveSeconds: number }[];
  commit: string;
}

/**
 * The DuoAttention gate files of ../shared and the model preset of each one's shape (Llama-3-8B has
 * Llama-3.1-8B's layers, heads and widths). FAIRKV_E2E_GATES picks one (default: the issue's,
 * Meta-Llama-3.1-8B-Instruct).
 */
const GATE_MODELS: Record<string, string> = {
  'Meta-Llama-3.1-8B-Instruct': 'llama-3.1-8b',
  'Llama-3-8B-Instruct-Gradient-1048k': 'llama-3.1-8b',
  'Mistral-7B-Instruct-v0.2': 'mistral-7b-v0.2',
};
const GATES = process.env.FAIRKV_E2E_GATES ?? 'Meta-Llama-3.1-8B-Instruct';
if (!(GATES in GATE_MODELS)) {
  throw new Error(
    `FAIRKV_E2E_GATES: expected one of ${Object.keys(GATE_MODELS).join(', ')}, got ${JSON.stringify(GATES)}`,
  );
}

/** The issue's workload on `deviceCount` H100s: llama-3.1-8b, the DuoAttention 8B profile at `sparsity` (or FAIRKV_E2E_GATES's). */
function workload(deviceCount: number, sparsity: number) {
  const model = getModelPreset(GATE_MODELS[GATES]!);
  const tsv = readFileSync(
    new URL(`../../../shared/profiles/duo-attention/${GATES}/full_attention_heads.tsv`, import.meta.url),
    'utf8',
  );
  const profile = duoAttentionProfile(parseDuoAttentionGates(tsv), {
    contextLength: CONTEXT,
    selection: { sparsity },
    source: `DuoAttention ${GATES}, sparsity ${sparsity}`,
  });
  return {
    model,
    profile,
    cluster: createCluster('h100-sxm-80g', deviceCount),
    batch: 'max' as const,
    newTokens: NEW_TOKENS,
    dtype: 'bf16' as const,
  };
}

async function prepare(deviceCount: number): Promise<void> {
  const { solvePlacement } = await import('@fairkv/placement');
  const { solveIlp } = await import('@fairkv/placement/ilp');
  const request = workload(deviceCount, SPARSITY);
  const { model, profile } = request;
  const plans: Prepared['plans'] = [];
  for (const solver of ['contiguous', 'greedy', 'fair-copy'] as const) {
    const result = solvePlacement({ ...request, solver });
    plans.push({ solver, plan: result.plan, optimal: result.optimal, solveSeconds: result.solveSeconds });
  }
  const ilp = await solveIlp(request);
  plans.push({ solver: 'ilp', plan: ilp.plan, optimal: ilp.optimal, solveSeconds: ilp.solveSeconds });
  const commit = gitCommit();
  mkdirSync('.device', { recursive: true });
  writeFileSync(
    `.device/e2e-plans-${deviceCount}.json`,
    JSON.stringify({ model, profile, deviceCount, plans, commit } satisfies Prepared),
  );
  for (const { solver, plan } of plans) {
    console.log(
      `${solver}: max batch ${plan.predicted.maxBatch}, predicted ${plan.predicted.throughputTokensPerSecond.toFixed(0)} tokens/s, step ${(plan.predicted.stepTimeSeconds * 1e3).toFixed(2)} ms`,
    );
  }
}

/**
 * What the cost model allows fair-copy over contiguous (standard TP) for this workload: tokens/s of
 * each at its largest batch, by GPU count (FAIRKV_E2E_CEILING_DEVICES, default 2,4,8), DuoAttention
 * sparsity (FAIRKV_E2E_CEILING_SPARSITIES, default 0.25,0.5,0.75) and three sets of constants: the
 * paper's model (nominal bandwidth, 10 µs per layer), no fixed cost per layer (only bytes and the
 * all-reduces: what balancing alone could give) and the constants fitted on 2 H100s (η 0.985, 232 µs per
 * layer), which predicted every measured 4-GPU plan within 3-4%.
 */
async function ceiling(): Promise<void> {
  const { solvePlacement } = await import('@fairkv/placement');
  const deviceCounts = positiveIntegersFromEnv('FAIRKV_E2E_CEILING_DEVICES', '2,4,8');
  const sparsities = (process.env.FAIRKV_E2E_CEILING_SPARSITIES ?? '0.25,0.5,0.75')
    .split(',')
    .map((text) => sparsityFrom('FAIRKV_E2E_CEILING_SPARSITIES', text));
  const constants = [
    { name: 'paper model (nominal bandwidth, 10 us per layer)', options: {} },
    { name: 'no fixed cost per layer', options: { layerOverheadSeconds: 0 } },
    {
      name: 'fitted on 2 H100s (efficiency 0.985, 232 us per layer)',
      options: { bandwidthEfficiency: 0.985, layerOverheadSeconds: 232e-6 },
    },
  ];
  const rows: Record<string, unknown>[] = [];
  for (const sparsity of sparsities) {
    for (const deviceCount of deviceCounts) {
      const request = workload(deviceCount, sparsity);
      for (const { name, options } of constants) {
        const [contiguous, fairCopy] = (['contiguous', 'fair-copy'] as const).map(
          (solver) => solvePlacement({ ...request, solver, options }).plan.predicted,
        );
        const ratio = fairCopy!.throughputTokensPerSecond / contiguous!.throughputTokensPerSecond;
        rows.push({
          sparsity,
          deviceCount,
          constants: name,
          contiguous: { batch: contiguous!.batch, tokensPerSecond: contiguous!.throughputTokensPerSecond },
          fairCopy: { batch: fairCopy!.batch, tokensPerSecond: fairCopy!.throughputTokensPerSecond },
          ratio,
        });
        console.log(
          `sparsity ${sparsity}, ${deviceCount} GPUs, ${name}: fair-copy ${ratio.toFixed(2)}x contiguous (batch ${fairCopy!.batch} vs ${contiguous!.batch}, ${fairCopy!.throughputTokensPerSecond.toFixed(0)} vs ${contiguous!.throughputTokensPerSecond.toFixed(0)} tokens/s)`,
        );
      }
    }
  }
  const suffix = GATES === 'Meta-Llama-3.1-8B-Instruct' ? '' : `-${GATES}`;
  const out = new URL(`./results/cuda-decode-e2e-ceiling${suffix}.json`, import.meta.url);
  writeFileSync(
    out,
    `${JSON.stringify({ benchmark: 'cuda-decode-e2e ceiling', model: GATE_MODELS[GATES], gates: GATES, cluster: 'h100-sxm-80g', contextLength: CONTEXT, commit: gitCommit(), rows }, null, 2)}\n`,
  );
  console.log(`wrote ${relative(process.cwd(), fileURLToPath(out))}`);
}

type Execution = 'inline' | 'workers';

/**
 * The devices of one plan: `inline` = one CUDA backend per GPU driven from this thread with an
 * ncclCommInitAll group (the first measurement); `workers` = one runtime worker thread per GPU, each
 * with its own backend and NCCL rank (ncclCommInitRank), as `createInferenceEngine` runs them.
 */
async function createDevices(
  execution: Execution,
  config: ModelConfig,
  shards: DeviceShard[],
  blocks: number[],
): Promise<DeviceHandle[]> {
  const { createCudaBackend, createNcclRankCommunicators, cudaWorkerBackend } = await import('@fairkv/kernels-cuda');
  const common = {
    config,
    dtype: 'bf16' as const,
    kvBlockSize: 16,
    maxPositions: CONTEXT + NEW_TOKENS + 8,
    kvFill: 0.01,
  };
  if (execution === 'workers') {
    // bundled (.device/e2e.mjs): the worker script and the CUDA worker module are bundles beside this one
    const bundled = import.meta.url.endsWith('.mjs');
    const spec = cudaWorkerBackend();
    return createWorkerDevices({
      ...common,
      weights: { kind: 'dummy', seed: 1 },
      shards,
      backend: bundled
        ? { module: new URL('./cuda-worker-device.mjs', import.meta.url).href, options: spec.options }
        : spec,
      ...(bundled ? { workerScript: new URL('./device-worker.mjs', import.meta.url) } : {}),
      blockSize: 16,
      kvBlockCount: (shard) => blocks[shard.device]!,
    });
  }
  const backends = shards.map((shard) => createCudaBackend({ device: shard.device }));
  const communicators = createNcclRankCommunicators(backends);
  return shards.map((shard) => {
    const handle = inlineDeviceHandle(
      new DeviceExecutor({
        ...common,
        backend: backends[shard.device]!,
        shard,
        weights: dummyShardWeights(config, shard, 1, 'bf16'),
        communicator: communicators[shard.device]!,
        kvBlockCount: blocks[shard.device]!,
      }),
    );
    return {
      ...handle,
      dispose: () => {
        communicators[shard.device]!.dispose();
        return handle.dispose();
      },
    };
  });
}

/** A profile of `steps` decode steps as per-step figures (milliseconds and operation counts per step). */
function perStep(profile: BackendProfile, steps: number, seconds: number) {
  return {
    stepMilliseconds: (seconds * 1e3) / steps,
    busyMilliseconds: profile.busyMilliseconds / steps,
    spanMilliseconds: profile.spanMilliseconds / steps,
    operations: profile.operations.map((o) => ({
      name: o.name,
      count: o.count / steps,
      milliseconds: o.milliseconds / steps,
      ...(o.hostMilliseconds !== undefined ? { hostMilliseconds: o.hostMilliseconds / steps } : {}),
    })),
  };
}

/**
 * Per layer and device, from the profiles' call-by-call lists (averaged over the profiled steps): the
 * attention call, the all-reduce after the attention's output projection and the one after the MLP.
 * An all-reduce lasts until the last device arrives, so the spread of one layer's attention across
 * devices shows up as the first all-reduce of the devices that finished early. Undefined where a
 * device's calls do not line up (a layer without attention on some device, or a truncated list).
 */
function layerTimeline(rawProfiles: BackendProfile[], layerCount: number, steps: number) {
  const series = rawProfiles.map((profile) => {
    const calls = profile.calls ?? [];
    return {
      attention: calls.filter((call) => call.name === 'ragged-decode-attention').map((call) => call.milliseconds),
      allReduce: calls.filter((call) => call.name === 'all-reduce').map((call) => call.milliseconds),
    };
  });
  if (series.some((s) => s.attention.length !== layerCount * steps || s.allReduce.length !== 2 * layerCount * steps))
    return undefined;
  const perLayer = (pick: (s: (typeof series)[number], index: number) => number) =>
    Array.from({ length: layerCount }, (_, layer) =>
      series.map((s) => {
        let sum = 0;
        for (let step = 0; step < steps; step++) sum += pick(s, step * layerCount + layer);
        return sum / steps;
      }),
    );
  const attentionMs = perLayer((s, i) => s.attention[i]!);
  const allReduceAfterAttentionMs = perLayer((s, i) => s.allReduce[2 * i]!);
  const allReduceAfterMlpMs = perLayer((s, i) => s.allReduce[2 * i + 1]!);
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  const us = (ms: number) => Number((ms * 1e3).toFixed(1));
  return {
    attentionMs,
    allReduceAfterAttentionMs,
    allReduceAfterMlpMs,
    summary: {
      /** mean over layers of (slowest device's attention - fastest's) */
      attentionSpreadUs: us(mean(attentionMs.map((row) => Math.max(...row) - Math.min(...row)))),
      /** per device, mean over layers */
      attentionUs: series.map((_, d) => us(mean(attentionMs.map((row) => row[d]!)))),
      allReduceAfterAttentionUs: series.map((_, d) => us(mean(allReduceAfterAttentionMs.map((row) => row[d]!)))),
      allReduceAfterMlpUs: series.map((_, d) => us(mean(allReduceAfterMlpMs.map((row) => row[d]!)))),
    },
  };
}

async function runPlans(file: string, executions: Execution[]): Promise<void> {
  const { probeCuda } = await import('@fairkv/kernels-cuda');
  const prepared = JSON.parse(readFileSync(file, 'utf8')) as Prepared;
  const probe = probeCuda();
  if (!probe.available) throw new Error(probe.reason);
  const { model: config, profile } = prepared;
  const results: Record<string, unknown>[] = [];
  // FAIRKV_E2E_SOLVERS=fair-copy,ilp runs a subset (e.g. under a profiler)
  const only = process.env.FAIRKV_E2E_SOLVERS?.split(',');
  const plans = prepared.plans.filter(({ solver }) => !only || only.includes(solver));
  for (const execution of executions) {
    for (const { solver, plan } of plans) {
      const batch = Math.floor(plan.predicted.maxBatch);
      const { shards, table } = deviceShardsFromPlan(plan, config);
      const router = new ReplicaRouter(table);
      const ids = Array.from({ length: batch }, (_, r) => `r${r}`);
      const routes = ids.map((id) => router.admit(id, profile.mean));
      const served = (r: number, l: number, head: HostedHead) => routes[r]![l]![head.kvHead] === head.replica;
      // sum over the (request, layer, hosted head) pairs a shard serves
      const sumServed = (shard: DeviceShard, perPair: (l: number, kvHead: number) => number) =>
        ids.reduce(
          (sum, _, r) =>
            sum +
            shard.layers.reduce(
              (layerSum, heads, l) =>
                layerSum +
                heads.reduce((headSum, head) => headSum + (served(r, l, head) ? perPair(l, head.kvHead) : 0), 0),
              0,
            ),
          0,
        );
      const blocks = shards.map(
        (shard) => sumServed(shard, (l, kvHead) => Math.ceil((profile.mean[l]![kvHead]! + NEW_TOKENS) / 16)) + 64,
      );
      const started = performance.now();
      let devices: DeviceHandle[] = [];
      try {
        devices = await createDevices(execution, config, shards, blocks);
        const setupSeconds = (performance.now() - started) / 1000;
        for (const kvScale of KV_SCALES) {
          // every pair keeps max(1, round(scale x its profile length)) tokens: the step's KV bytes scale,
          // its weights, launches and all-reduces do not
          const lengthOf = (l: number, kvHead: number) => Math.max(1, Math.round(profile.mean[l]![kvHead]! * kvScale));
          for (const [r, id] of ids.entries()) {
            await Promise.all(
              devices.map((device, d) =>
                device.admitSynthetic(
                  id,
                  shards[d]!.layers.map((heads, l) =>
                    heads.map((head) => (served(r, l, head) ? lengthOf(l, head.kvHead) : null)),
                  ),
                  NEW_TOKENS,
                ),
              ),
            );
          }
          // bytes of K and V each device's attention reads in one step (bf16)
          const kvReadBytes = shards.map((shard) => sumServed(shard, lengthOf) * 4 * config.headDim);
          const stepSeconds: number[] = [];
          // seconds from the step's start until each device's decode call returned: with workers, a device
          // that does not compute logits returns once it has enqueued its step, so this is its host time
          const replySeconds: number[][] = devices.map(() => []);
          const decodeStep = async (step: number) => {
            const rows = ids.map((requestId, r) => ({
              requestId,
              token: (r * 31 + step) % config.vocabSize,
              position: CONTEXT + step,
            }));
            const t0 = performance.now();
            const replies = await Promise.all(
              devices.map((device) =>
                Promise.resolve(device.decode(rows, undefined, false)).then(() => performance.now() - t0),
              ),
            );
            return { seconds: (performance.now() - t0) / 1000, replies };
          };
          for (let step = 0; step < WARMUP_STEPS + MEASURED_STEPS; step++) {
            const { seconds, replies } = await decodeStep(step);
            if (step >= WARMUP_STEPS) {
              stepSeconds.push(seconds);
              replies.forEach((ms, d) => {
                replySeconds[d]!.push(ms / 1000);
              });
            }
          }
          let profiles: ReturnType<typeof perStep>[] | undefined;
          let layers: ReturnType<typeof layerTimeline>;
          if (PROFILE_STEPS > 0) {
            await Promise.all(devices.map((device) => device.startProfile()));
            let profiledSeconds = 0;
            for (let step = 0; step < PROFILE_STEPS; step++)
              profiledSeconds += (await decodeStep(WARMUP_STEPS + MEASURED_STEPS + step)).seconds;
            const rawProfiles = await Promise.all(devices.map((device) => device.stopProfile()));
            profiles = rawProfiles.map((p) => perStep(p, PROFILE_STEPS, profiledSeconds));
            layers = layerTimeline(rawProfiles, config.layerCount, PROFILE_STEPS);
            if (layers) console.log(`  per layer (us): ${JSON.stringify(layers.summary)}`);
            profiles.forEach((p, d) => {
              console.log(
                `  device ${d}: step ${p.stepMilliseconds.toFixed(2)} ms (profiled), busy ${p.busyMilliseconds.toFixed(2)} ms, span ${p.spanMilliseconds.toFixed(2)} ms; ${p.operations
                  .slice(0, 12)
                  .map(
                    (o) =>
                      `${o.name} ${o.milliseconds.toFixed(2)} (${o.count}x, host ${(o.hostMilliseconds ?? 0).toFixed(2)})`,
                  )
                  .join(', ')}`,
              );
            });
          }
          const medianOf = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
          const median = medianOf(stepSeconds);
          stepSeconds.sort((a, b) => a - b);
          const stats = await Promise.all(devices.map((device) => device.stats()));
          results.push({
            execution,
            solver,
            kvScale,
            batch,
            setupSeconds,
            measured: { stepSecondsMedian: median, stepSecondsMin: stepSeconds[0], tokensPerSecond: batch / median },
            predicted: {
              stepSeconds: plan.predicted.stepTimeSeconds,
              tokensPerSecond: plan.predicted.throughputTokensPerSecond,
            },
            measuredOverPredictedStep: median / plan.predicted.stepTimeSeconds,
            copies: plan.layers.flatMap((layer) => layer.heads).filter((head) => head.replicas.length > 1).length,
            kvReadBytesMax: Math.max(...kvReadBytes),
            ...(layers ? { layerTimeline: layers } : {}),
            devices: stats.map((s, d) => ({
              device: s.device,
              kvBytes: s.kvBytes,
              kvReadBytes: kvReadBytes[d],
              allocatedBytes: s.allocatedBytes,
              replySecondsMedian: medianOf(replySeconds[d]!),
              ...(profiles ? { profilePerStep: profiles[d] } : {}),
            })),
          });
          console.log(
            `${execution} ${solver}${kvScale === 1 ? '' : ` (KV x${kvScale})`}: batch ${batch}, step ${(median * 1e3).toFixed(2)} ms (predicted ${(plan.predicted.stepTimeSeconds * 1e3).toFixed(2)} ms), ${(batch / median).toFixed(0)} tokens/s (predicted ${plan.predicted.throughputTokensPerSecond.toFixed(0)}), KV read ${kvReadBytes.map((bytes) => (bytes / 1e9).toFixed(1)).join('/')} GB, device replies ${replySeconds.map((r) => (medianOf(r) * 1e3).toFixed(1)).join('/')} ms, setup ${setupSeconds.toFixed(1)} s`,
          );
          for (const id of ids) await Promise.all(devices.map((device) => device.release(id)));
        }
      } catch (error) {
        results.push({ execution, solver, batch, error: (error as Error).stack ?? (error as Error).message });
        console.log(`${execution} ${solver}: FAILED ${(error as Error).stack ?? (error as Error).message}`);
      } finally {
        await Promise.all(devices.map((device) => device.dispose()));
      }
    }
  }
  type Row = {
    execution: string;
    solver: string;
    kvScale: number;
    kvReadBytesMax: number;
    measured?: { tokensPerSecond: number; stepSecondsMedian: number };
    speedupOverContiguous?: number;
  };
  const rows = results as Row[];
  for (const result of rows) {
    const contiguous = rows.find(
      (r) => r.solver === 'contiguous' && r.execution === result.execution && r.kvScale === result.kvScale,
    );
    if (result.measured && contiguous?.measured)
      result.speedupOverContiguous = result.measured.tokensPerSecond / contiguous.measured.tokensPerSecond;
  }
  // with several KV scales: the step's growth per KV byte between the two largest scales (the busiest
  // device's reading rate once the GPU, not the host, sets the pace) and the step at the smallest scale
  const kvSweep = [...new Set(rows.map((r) => `${r.execution} ${r.solver}`))].flatMap((key) => {
    const points = rows
      .filter((r) => `${r.execution} ${r.solver}` === key && r.measured)
      .sort((a, b) => b.kvScale - a.kvScale);
    if (points.length < 2) return [];
    const [top, next] = points as [Row, Row];
    const seconds = top.measured!.stepSecondsMedian - next.measured!.stepSecondsMedian;
    return [
      {
        execution: top.execution,
        solver: top.solver,
        scales: points.map((p) => p.kvScale),
        marginalKvBytesPerSecond: (top.kvReadBytesMax - next.kvReadBytesMax) / seconds,
        stepSecondsAtSmallestScale: points.at(-1)!.measured!.stepSecondsMedian,
      },
    ];
  });
  for (const fit of kvSweep) {
    console.log(
      `${fit.execution} ${fit.solver}: KV read at ${(fit.marginalKvBytesPerSecond / 1e12).toFixed(2)} TB/s per GPU (scales ${fit.scales[0]}-${fit.scales[1]}); step ${(fit.stepSecondsAtSmallestScale * 1e3).toFixed(1)} ms at KV x${fit.scales.at(-1)}`,
    );
  }
  const out = process.env.OUT ?? '.';
  writeFileSync(
    `${out}/cuda-decode-e2e-${prepared.deviceCount}.json`,
    `${JSON.stringify({ benchmark: 'cuda-decode-e2e', gpus: probe.devices.map((d) => d.name), deviceCount: prepared.deviceCount, model: `${prepared.model.name} shape, dummy bf16 weights (N(0, 0.02))`, profile: profile.source, context: CONTEXT, commit: gitCommit(), addonBuild: probe.build ?? null, plansCommit: prepared.commit, host: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }, date: new Date().toISOString(), results, ...(kvSweep.length > 0 ? { kvSweep } : {}) }, null, 2)}\n`,
  );
}

/**
 * The cost model calibrated on measured steps (here, no GPU), as the FairKV paper calibrates its per-head
 * latency model: from one plan's steps at two KV scales (a KV sweep, `FAIRKV_E2E_KV_SCALES=1,0.5`), solve
 * the two constants the model takes from the hardware, the fraction of the nominal bandwidth the kernels
 * reach (`bandwidthEfficiency`) and the fixed time per layer (`layerOverheadSeconds`: launches, norms,
 * RoPE, the residual adds), then predict every other plan at every scale with them and compare. The
 * predicted step is affine in 1/efficiency and in the overhead, so two points fix both.
 *
 *   npx tsx bench/cuda-decode-e2e/run.ts calibrate G [results.json] [plan solver to fit on]
 */
async function calibrate(deviceCount: number, file: string, fitSolver: string): Promise<void> {
  const { fitCostConstants, predictPlan } = await import('@fairkv/placement');
  const prepared = JSON.parse(readFileSync(`.device/e2e-plans-${deviceCount}.json`, 'utf8')) as Prepared;
  const measured = JSON.parse(readFileSync(file, 'utf8')) as {
    gpus: string[];
    results: { solver: string; kvScale?: number; measured?: { stepSecondsMedian: number } }[];
  };
  const scaled = (scale: number): HeadLoadProfile => ({
    ...prepared.profile,
    mean: prepared.profile.mean.map((row) => row.map((length) => Math.max(1, Math.round(length * scale)))),
  });
  /** The plan's workload at KV `scale`: its largest batch on the H100s, the profile's lengths scaled. */
  const requestAt = (plan: Plan, scale: number) => ({
    model: prepared.model,
    profile: scaled(scale),
    cluster: createCluster('h100-sxm-80g', deviceCount),
    batch: Math.floor(plan.predicted.maxBatch),
    newTokens: NEW_TOKENS,
    dtype: 'bf16' as const,
  });
  const predict = (
    plan: Plan,
    scale: number,
    options: { bandwidthEfficiency?: number; layerOverheadSeconds?: number },
  ) => predictPlan(plan, { ...requestAt(plan, scale), options }).stepTimeSeconds;
  const stepOf = (solver: string, scale: number) =>
    measured.results.find((r) => r.solver === solver && (r.kvScale ?? 1) === scale)?.measured?.stepSecondsMedian;
  const scales = [...new Set(measured.results.map((r) => r.kvScale ?? 1))].sort((a, b) => b - a);
  const fitPlan = prepared.plans.find((p) => p.solver === fitSolver)?.plan;
  // FAIRKV_CALIBRATION=file: predict with the constants fitted earlier (e.g. on another GPU count)
  const given = process.env.FAIRKV_CALIBRATION
    ? (JSON.parse(readFileSync(process.env.FAIRKV_CALIBRATION, 'utf8')) as {
        bandwidthEfficiency: number;
        layerOverheadSeconds: number;
      })
    : undefined;
  const [high, low = high] = scales;
  const [m1 = Number.NaN, m2 = Number.NaN] = [stepOf(fitSolver, high!), stepOf(fitSolver, low!)];
  if (!given && (!fitPlan || high === undefined || low === high || Number.isNaN(m1) || Number.isNaN(m2))) {
    throw new Error(`${file} needs ${fitSolver} steps at two KV scales (FAIRKV_E2E_KV_SCALES=1,0.5)`);
  }
  let efficiency: number;
  let layerOverheadSeconds: number;
  if (given) {
    ({ bandwidthEfficiency: efficiency, layerOverheadSeconds } = given);
    console.log(
      `constants of ${process.env.FAIRKV_CALIBRATION}: bandwidthEfficiency ${efficiency.toFixed(3)}, layerOverheadSeconds ${(layerOverheadSeconds * 1e6).toFixed(0)} us`,
    );
  } else {
    // the predicted step is affine in 1 / efficiency and the overhead (@fairkv/placement's stepTerms)
    ({ bandwidthEfficiency: efficiency, layerOverheadSeconds } = fitCostConstants(
      { plan: fitPlan!, request: requestAt(fitPlan!, high!), stepSeconds: m1 },
      { plan: fitPlan!, request: requestAt(fitPlan!, low!), stepSeconds: m2 },
    ));
    console.log(
      `fitted on ${fitSolver} at KV x${high} and x${low}: bandwidthEfficiency ${efficiency.toFixed(3)}, layerOverheadSeconds ${(layerOverheadSeconds * 1e6).toFixed(0)} us`,
    );
  }
  const rows = prepared.plans.flatMap(({ solver, plan }) =>
    scales.flatMap((scale) => {
      const step = stepOf(solver, scale);
      if (step === undefined) return [];
      const nominal = predict(plan, scale, {});
      const calibrated = predict(plan, scale, { bandwidthEfficiency: efficiency, layerOverheadSeconds });
      return [
        {
          solver,
          kvScale: scale,
          measured: step,
          nominal,
          calibrated,
          ratio: step / calibrated,
          fitted: !given && solver === fitSolver,
        },
      ];
    }),
  );
  for (const row of rows) {
    console.log(
      `${deviceCount} GPUs ${row.solver} KV x${row.kvScale}${row.fitted ? ' (fitted)' : ''}: measured ${(row.measured * 1e3).toFixed(1)} ms, predicted ${(row.nominal * 1e3).toFixed(1)} ms nominal, ${(row.calibrated * 1e3).toFixed(1)} ms calibrated (measured / predicted ${row.ratio.toFixed(3)})`,
    );
  }
  const out = new URL(`./results/cuda-decode-e2e-calibration-${deviceCount}.json`, import.meta.url);
  writeFileSync(
    out,
    `${JSON.stringify({ benchmark: 'cuda-decode-e2e calibration', measuredFile: relative(process.cwd(), file), gpus: measured.gpus, ...(given ? { constantsFrom: process.env.FAIRKV_CALIBRATION } : { fitSolver, scales: [high, low] }), bandwidthEfficiency: efficiency, layerOverheadSeconds, rows }, null, 2)}\n`,
  );
}

const [mode, argument] = process.argv.slice(2);
if (mode === 'prepare') await prepare(Number(argument ?? 2));
else if (mode === 'ceiling') await ceiling();
else if (mode === 'calibrate') {
  const deviceCount = Number(argument ?? 2);
  await calibrate(
    deviceCount,
    process.argv[4] ?? fileURLToPath(new URL(`./results/cuda-decode-e2e-${deviceCount}xh100.json`, import.meta.url)),
    process.argv[5] ?? 'contiguous',
  );
} else if (mode === 'run') {
  const executions = (process.argv[4] ?? 'workers,inline').split(',') as Execution[];
  for (const execution of executions) {
    if (execution !== 'inline' && execution !== 'workers')
      throw new Error(`execution: expected inline or workers, got ${execution}`);
  }
  await runPlans(argument ?? '.device/e2e-plans.json', executions);
} else {
  console.log(
    'bench/cuda-decode-e2e needs a GPU machine: `prepare [G]` here, then `run` there (see the file header). Skipped.',
  );
}
