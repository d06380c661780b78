/**
 * Decode steps as CUDA graphs against the same steps launched one operation at a time, on one GPU:
 * the llama-3.1-8b shape with dummy bf16 weights, every kv head on the device, each request with
 * FAIRKV_GRAPH_CONTEXT tokens (default 1024) of KV per head, batches FAIRKV_GRAPH_BATCHES (default
 * 1,4,16,64). Two executors share one CUDA backend (one with graph steps, one without; same weights,
 * same requests) and are timed in alternating rounds in one process: the ratio is what graph steps
 * give where the host, not the GPU, sets a step's time. Also checks that both give the same tokens.
 * FAIRKV_GRAPH_COMPARE=FAIRKV_CUDA_NAME=VALUE instead times graph steps on two backends, one created
 * with that CUDA environment variable (e.g. FAIRKV_CUDA_GEMV=0), in alternating rounds alike
 * (results/cuda-graph-steps-compare.json).
 *
 * Run on a GPU machine: `npx tsx bench/cuda-graph-steps/run.ts` (bundled by
 * packages/kernels-cuda/scripts/device/bundle-device.sh; `run-device.sh graphs`).
 * Writes bench/cuda-graph-steps/results/cuda-graph-steps.json (and $OUT/ when set).
 */
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getModelPreset } from '@fairkv/core';
import { GRAPH_SEGMENT_OPERATIONS } from '@fairkv/kernels';
import { createCudaBackend, probeCuda } from '@fairkv/kernels-cuda';
import {
  type DecodeRow,
  DeviceExecutor,
  deviceShardsFromPlan,
  dummyShardWeights,
  SoloCommunicator,
  singleDevicePlan,
} from '@fairkv/runtime';
import { positiveIntegersFromEnv } from '../env-integers.js';
import { gitCommit } from '../git-commit.js';
import { writeResult } from '../write-result.js';

const here = dirname(fileURLToPath(import.meta.url));
const benchRoot = process.env.FAIRKV_BENCH_DIR ?? here;
const batches = positiveIntegersFromEnv('FAIRKV_GRAPH_BATCHES', '1,4,16,64');
const context = positiveIntegersFromEnv('FAIRKV_GRAPH_CONTEXT', '1024')[0]!;
const rounds = positiveIntegersFromEnv('FAIRKV_GRAPH_ROUNDS', '3')[0]!;
const stepsPerRound = positiveIntegersFromEnv('FAIRKV_GRAPH_STEPS', '20')[0]!;
const WARMUP_STEPS = 3;

const probe = probeCuda();
if (!probe.available) throw new Error(probe.reason);
const config = getModelPreset('llama-3.1-8b');
const plan = singleDevicePlan(config);
const {
  shards: [shard],
} = deviceShardsFromPlan(plan, config);
// FAIRKV_GRAPH_COMPARE: "eager" (default) times graph steps against one operation at a time on one
// backend; FAIRKV_CUDA_NAME=VALUE times graph steps on a backend created without that variable against
// graph steps on a second backend created with it (e.g. FAIRKV_CUDA_GEMV=0), both in this process
const compare = process.env.FAIRKV_GRAPH_COMPARE ?? 'eager';
const knob = compare === 'eager' ? null : /^(FAIRKV_CUDA_[A-Z0-9_]+)=(.*)$/.exec(compare);
if (compare !== 'eager' && knob === null) {
  throw new Error(`FAIRKV_GRAPH_COMPARE must be "eager" or FAIRKV_CUDA_NAME=VALUE, got "${compare}"`);
}
const backend = createCudaBackend({ device: 0 });
const backends = [backend, backend];
if (knob !== null) {
  const saved = process.env[knob[1]!];
  process.env[knob[1]!] = knob[2]!; // read by the addon when it creates the context
  backends[1] = createCudaBackend({ device: 0 });
  if (saved === undefined) delete process.env[knob[1]!];
  else process.env[knob[1]!] = saved;
}
const labels = knob === null ? ['graph steps', 'one by one'] : ['graph steps', `graph steps, ${compare}`];
const largest = Math.max(...batches);
const newTokens = WARMUP_STEPS + 2 * rounds * stepsPerRound + 8;
const blocksPerRequest = config.layerCount * config.kvHeadCount * Math.ceil((context + newTokens) / 16);
console.log(`llama-3.1-8b shape, dummy bf16 weights on ${backend.deviceProperties.name}; generating weights...`);
const weights = dummyShardWeights(config, shard!, 1, 'bf16');
const executors = [0, 1].map(
  (which) =>
    new DeviceExecutor({
      backend: backends[which]!,
      config,
      shard: shard!,
      weights,
      communicator: new SoloCommunicator(),
      dtype: 'bf16',
      kvBlockCount: largest * blocksPerRequest + 64,
      kvBlockSize: 16,
      kvFill: 0.01,
      maxPositions: context + newTokens + 8,
      graphSteps: knob !== null || which === 0,
    }),
);

const medianOf = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const results: Record<string, unknown>[] = [];
let admitted = 0;
for (const batch of batches) {
  const ids = Array.from({ length: batch }, () => `r${admitted++}`);
  const lengths = shard!.layers.map((heads) => heads.map(() => context));
  for (const executor of executors) for (const id of ids) executor.admitSynthetic(id, lengths, newTokens);
  const positions = [0, 0];
  const tokens: number[][][] = [[], []];
  const step = async (which: number) => {
    const rows: DecodeRow[] = ids.map((requestId, r) => ({
      requestId,
      token: (r * 31 + positions[which]!) % config.vocabSize,
      position: context + positions[which]!,
    }));
    positions[which]!++;
    const started = performance.now();
    const { tokens: sampled } = await executors[which]!.decode(rows, undefined, false);
    tokens[which]!.push(Array.from(sampled!));
    return performance.now() - started;
  };
  for (let s = 0; s < WARMUP_STEPS; s++) for (const which of [0, 1]) await step(which);
  const times: number[][] = [[], []];
  for (let round = 0; round < rounds; round++) {
    for (const which of [0, 1]) for (let s = 0; s < stepsPerRound; s++) times[which]!.push(await step(which));
  }
  const [graphMs, eagerMs] = times.map(medianOf) as [number, number];
  const sameTokens = JSON.stringify(tokens[0]) === JSON.stringify(tokens[1]);
  const stats = backend.graphStats();
  results.push({
    batch,
    context,
    ...(knob === null
      ? {
          graphStepMsMedian: graphMs,
          eagerStepMsMedian: eagerMs,
          graphTokensPerSecond: (batch * 1000) / graphMs,
          eagerTokensPerSecond: (batch * 1000) / eagerMs,
        }
      : { stepMsMedian: { [labels[0]!]: graphMs, [labels[1]!]: eagerMs } }),
    speedup: eagerMs / graphMs,
    sameTokens,
    graphStats: stats,
  });
  console.log(
    `batch ${batch}, ${context} tokens: ${labels[0]} ${graphMs.toFixed(2)} ms (${((batch * 1000) / graphMs).toFixed(0)} tok/s), ${labels[1]} ${eagerMs.toFixed(2)} ms (${((batch * 1000) / eagerMs).toFixed(0)} tok/s): ${(eagerMs / graphMs).toFixed(3)}x; same tokens: ${sameTokens}; ${JSON.stringify(stats)}`,
  );
  // different kernels may round differently: the tokens must then only be close, which dummy weights do not show
  if (!sameTokens && knob === null) process.exitCode = 1;
  for (const executor of executors) for (const id of ids) executor.release(id);
}

writeResult(benchRoot, knob === null ? 'cuda-graph-steps.json' : 'cuda-graph-steps-compare.json', {
  benchmark: 'cuda-graph-steps',
  compare,
  gpu: backend.deviceProperties.name,
  model: 'llama-3.1-8b shape, dummy bf16 weights (N(0, 0.02)), every head on one GPU',
  commit: gitCommit(),
  host: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
  date: new Date().toISOString(),
  rounds,
  stepsPerRound,
  // the CUDA backend's benchmark knobs for graph steps, as set for this run
  graphSegmentOperations: Number(process.env.FAIRKV_CUDA_GRAPH_SEGMENT ?? GRAPH_SEGMENT_OPERATIONS),
  graphUploads: process.env.FAIRKV_CUDA_GRAPH_UPLOAD === 'memcpy' ? 'copy nodes' : 'kernels reading mapped memory',
  results,
});
for (const executor of executors) executor.dispose();
if (backends[1] !== backend) backends[1]!.dispose();
