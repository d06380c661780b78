/**
 * Host cost of one decode step: the runtime's DeviceExecutor on a CudaBackend whose addon does nothing
 * (every call returns at once), so what is timed is the JavaScript of the runtime, the backend (argument
 * validation, native argument objects) and nothing of Node-API, the CUDA driver or the GPU. On a GPU this
 * host time runs ahead of the device; once it exceeds the device's time per step, the GPU waits.
 *
 *   npx tsx bench/runtime-host/run.ts [plans.json] [solver]
 *
 * Reads the plans `bench/cuda-decode-e2e/run.ts prepare G` wrote (default .device/e2e-plans-2.json), takes one
 * plan (default fair-copy), and runs the shard of device 1 (no logits) at the plan's batch with the
 * profile's KV lengths admitted without KV data. Writes bench/runtime-host/results/runtime-host.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { HeadLoadProfile, ModelConfig, Plan } from '@fairkv/core';
import { CudaBackend, type NativeAddon } from '@fairkv/kernels-cuda';
import {
  type Communicator,
  DeviceExecutor,
  deviceShardsFromPlan,
  ReplicaRouter,
  shapedShardWeights,
} from '@fairkv/runtime';
import { gitCommit } from '../git-commit.js';

const file = process.argv[2] ?? '.device/e2e-plans-2.json';
const solver = process.argv[3] ?? 'fair-copy';
const STEPS = Number(process.env.FAIRKV_HOST_STEPS ?? '20');

const prepared = JSON.parse(readFileSync(file, 'utf8')) as {
  model: ModelConfig;
  profile: HeadLoadProfile;
  plans: { solver: string; plan: Plan }[];
};
const { model: config, profile } = prepared;
const plan = prepared.plans.find((p) => p.solver === solver)?.plan;
if (!plan) throw new Error(`${file} has no ${solver} plan`);

/** Counts calls per addon method; allocations are fake addresses, nothing is copied or run. */
const calls = new Map<string, number>();
let nextPointer = 0x10000n;
const count = (name: string) => calls.set(name, (calls.get(name) ?? 0) + 1);
const addon = {
  createContext: () => 1,
  destroyContext: () => {},
  allocate: (_context: number, bytes: number) => {
    const pointer = nextPointer;
    nextPointer += BigInt(Math.ceil(bytes / 256) * 256 + 256);
    return pointer;
  },
  release: () => {},
  upload: () => count('upload'),
  fill: () => count('fill'),
  copy: () => count('copy'),
  run: (_context: number, kernel: string) => count(kernel),
  download: (_c: number, _p: bigint, _o: number, elementCount: number, dtype: number) => {
    count('download');
    return Promise.resolve(dtype === 3 ? new Int32Array(elementCount) : new Float32Array(elementCount));
  },
  synchronize: () => Promise.resolve(),
  memoryInfo: () => ({ freeBytes: 80e9, totalBytes: 80e9 }),
} as unknown as NativeAddon;
const backend = new CudaBackend(addon, 0, {
  name: 'no-op addon',
  computeCapability: '9.0',
  multiprocessorCount: 132,
  totalMemoryBytes: 80e9,
  l2CacheBytes: 50e6,
  sharedMemoryPerBlockOptin: 227e3,
  memoryBusWidthBits: 5120,
});
/** Two ranks whose all-reduce is enqueued on the stream: one addon call, as NCCL's is. */
const communicator: Communicator = {
  rank: 1,
  size: plan.deviceCount,
  allReduceSum: async () => {},
  allReduceDeviceSum: async () => {
    count('all-reduce');
  },
  dispose: () => {},
};

const { shards, table } = deviceShardsFromPlan(plan, config);
const shard = shards.find((s) => !s.computesLogits) ?? shards[0]!;
const batch = Math.floor(plan.predicted.maxBatch);
// zero-filled host weights: never touched (the addon copies nothing), so they cost address space only
const executor = new DeviceExecutor({
  backend,
  config,
  shard,
  communicator,
  dtype: 'bf16',
  kvBlockCount: 8_000_000,
  maxPositions: 32768 + 128,
  weights: shapedShardWeights(config, shard, (count) => new Uint16Array(count)),
});
const router = new ReplicaRouter(table);
const ids = Array.from({ length: batch }, (_, r) => `r${r}`);
for (const id of ids) {
  const route = router.admit(id, profile.mean);
  executor.admitSynthetic(
    id,
    shard.layers.map((heads, l) =>
      heads.map((head) => (route[l]![head.kvHead] === head.replica ? profile.mean[l]![head.kvHead]! : null)),
    ),
    64,
  );
}
calls.clear();
const times: number[] = [];
for (let step = 0; step < STEPS; step++) {
  const rows = ids.map((requestId, r) => ({ requestId, token: r, position: 32768 + step }));
  const started = performance.now();
  await executor.decode(rows, undefined, false);
  times.push(performance.now() - started);
}
const measured = times.slice(3).sort((a, b) => a - b);
const median = measured[Math.floor(measured.length / 2)]!;
const perStep = Object.fromEntries([...calls].map(([name, n]) => [name, n / STEPS]));
const operations = Object.values(perStep).reduce((a, b) => a + b, 0);
console.log(
  `${solver}, device ${shard.device} of ${plan.deviceCount}, batch ${batch}: host ${median.toFixed(2)} ms per decode step, ${operations} operations (${((median * 1e3) / operations).toFixed(1)} us each)`,
);
console.log(perStep);
const out = new URL('./results/', import.meta.url);
mkdirSync(out, { recursive: true });
writeFileSync(
  new URL('runtime-host.json', out),
  `${JSON.stringify(
    {
      benchmark: 'runtime-host',
      plan: { file, solver, deviceCount: plan.deviceCount, device: shard.device, batch },
      hostMillisecondsPerStepMedian: median,
      operationsPerStep: perStep,
      microsecondsPerOperation: (median * 1e3) / operations,
      host: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
      commit: gitCommit(),
      date: new Date().toISOString(),
    },
    null,
    2,
  )}\n`,
);
executor.dispose();
