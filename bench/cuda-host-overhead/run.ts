/**
 * What one operation of a decode step costs the host on the CUDA backend (the small-batch regime,
 * where a step is dozens of small kernels per layer and the GPU waits for the host): for each kernel
 * of a Llama-3.1-8B decode layer at batch 1 (a 4096-wide hidden state, bf16 weights, 32 query and 8
 * kv heads of 128, one 2048-token KV sequence per kv head), the host time per `backend.run` issued
 * back to back without waiting, split into the contract's validation and argument translation (the
 * TypeScript side) and the addon's `run` (argument reading through N-API, launches, cuBLAS), next to
 * the device time of the same operation (the backend's operation profile). Also an upload of one
 * layer's pair table.
 *
 * Run on a GPU machine: `npx tsx bench/cuda-host-overhead/run.ts` (or `run-device.sh host`).
 * Writes bench/cuda-host-overhead/results/cuda-host-overhead.json (and $OUT/ when set).
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KernelName } from '@fairkv/core';
import { type KernelArgsMap, validateKernelArgs } from '@fairkv/kernels';
import { createCudaBackend, probeCuda } from '@fairkv/kernels-cuda';
import { toNativeKernelArgs } from '../../packages/kernels-cuda/src/native-kernel-args.js';
import { gitCommit } from '../git-commit.js';
import { writeResult } from '../write-result.js';

const here = dirname(fileURLToPath(import.meta.url));
const benchRoot = process.env.FAIRKV_BENCH_DIR ?? here;
const calls = Number(process.env.FAIRKV_BENCH_REPEATS ?? '2000');

const backend = createCudaBackend();
const hidden = 4096;
const heads = 32;
const kvHeads = 8;
const headDim = 128;
const intermediate = 14336;
const vocab = 128256;
const kvLength = 2048;
const blockSize = 16;

const f32 = (elementCount: number) => backend.createBuffer({ dtype: 'f32', elementCount });
const bf16 = (elementCount: number) => backend.createBuffer({ dtype: 'bf16', elementCount });
const i32 = (values: Int32Array) => {
  const buffer = backend.createBuffer({ dtype: 'i32', elementCount: values.length });
  backend.upload(buffer, values);
  return buffer;
};

const x = f32(hidden);
const normed = f32(hidden);
const q = f32(heads * headDim);
const k = f32(kvHeads * headDim);
const v = f32(kvHeads * headDim);
const attention = f32(heads * headDim);
const projected = f32(hidden);
const gate = f32(intermediate);
const up = f32(intermediate);
const act = f32(intermediate);
const logits = f32(vocab);
const blocksPerSequence = kvLength / blockSize;
const pool = bf16(kvHeads * blocksPerSequence * 2 * blockSize * headDim);
const blockTable = i32(Int32Array.from({ length: kvHeads * blocksPerSequence }, (_, i) => i));
const pairValues = Int32Array.from(
  { length: kvHeads * 4 },
  (_, i) => [0, i >> 2, kvLength - 1, (i >> 2) * blocksPerSequence][i & 3]!,
);
const pairs = i32(pairValues);
const entries = i32(pairValues);
const positions = i32(Int32Array.of(kvLength - 1));
const ropeTable = f32(4096 * headDim);
const tokens = i32(Int32Array.of(1));
const sampled = backend.createBuffer({ dtype: 'i32', elementCount: 1 });
for (const buffer of [x, ropeTable]) backend.fill(buffer, 0.01);
const weight = (rows: number, columns: number) => {
  const buffer = bf16(rows * columns);
  backend.fill(buffer, 0.001);
  return buffer;
};
const norm = weight(1, hidden);
const wqkv = weight(hidden, (heads + 2 * kvHeads) * headDim);
const wo = weight(heads * headDim, hidden);
const wGateUp = weight(hidden, 2 * intermediate);
const wDown = weight(intermediate, hidden);
const embedding = weight(1024, hidden);
const pool_ = {
  pool,
  blockTable,
  blockCount: kvHeads * blocksPerSequence,
  blockSize,
  headDim,
  blockTableLength: kvHeads * blocksPerSequence,
};

const operations: { name: string; kernel: KernelName; args: KernelArgsMap[KernelName] }[] = [
  {
    name: 'embedding-gather',
    kernel: 'embedding-gather',
    args: { table: embedding, tokens, output: x, rowCount: 1, vocabSize: 1024, hiddenSize: hidden },
  },
  {
    name: 'rms-norm',
    kernel: 'rms-norm',
    args: { input: x, weight: norm, output: normed, rowCount: 1, size: hidden, epsilon: 1e-5 },
  },
  {
    name: 'matmul q|k|v (split outputs)',
    kernel: 'matmul',
    args: {
      input: normed,
      weight: wqkv,
      output: q,
      outerSize: heads * headDim,
      output2: k,
      outerSize2: kvHeads * headDim,
      output3: v,
      outerSize3: kvHeads * headDim,
      rowCount: 1,
      innerSize: hidden,
    },
  },
  {
    name: 'rope (query)',
    kernel: 'rope',
    args: {
      data: q,
      positions,
      table: ropeTable,
      rowCount: 1,
      headCount: heads,
      headDim,
      tablePositionCount: 4096,
      layout: 'half-split',
    },
  },
  {
    name: 'kv-append',
    kernel: 'kv-append',
    args: { ...pool_, key: k, value: v, entries, rowCount: 1, kvHeadCount: kvHeads, entryCount: kvHeads },
  },
  {
    name: 'ragged-decode-attention',
    kernel: 'ragged-decode-attention',
    args: {
      ...pool_,
      query: q,
      output: attention,
      pairs,
      rowCount: 1,
      kvHeadCount: kvHeads,
      groupSize: heads / kvHeads,
      pairCount: kvHeads,
      scale: 1 / Math.sqrt(headDim),
    },
  },
  {
    name: 'matmul wo',
    kernel: 'matmul',
    args: {
      input: attention,
      weight: wo,
      output: projected,
      rowCount: 1,
      innerSize: heads * headDim,
      outerSize: hidden,
    },
  },
  {
    name: 'rms-norm + residual',
    kernel: 'rms-norm',
    args: { input: x, weight: norm, output: normed, rowCount: 1, size: hidden, epsilon: 1e-5, addend: projected },
  },
  {
    name: 'matmul gate|up (split outputs)',
    kernel: 'matmul',
    args: {
      input: normed,
      weight: wGateUp,
      output: gate,
      outerSize: intermediate,
      output2: up,
      outerSize2: intermediate,
      rowCount: 1,
      innerSize: hidden,
    },
  },
  { name: 'swiglu', kernel: 'swiglu', args: { gate, up, output: act, elementCount: intermediate } },
  {
    name: 'matmul w-down',
    kernel: 'matmul',
    args: { input: act, weight: wDown, output: normed, rowCount: 1, innerSize: intermediate, outerSize: hidden },
  },
  { name: 'add-in-place', kernel: 'add-in-place', args: { target: x, addend: normed, elementCount: hidden } },
  { name: 'argmax', kernel: 'argmax', args: { logits, output: sampled, rowCount: 1, vocabSize: vocab } },
];

const perCallUs = (body: () => void, count: number) => {
  const started = performance.now();
  for (let i = 0; i < count; i++) body();
  return ((performance.now() - started) * 1e3) / count;
};

const gpu = backend.deviceProperties;
console.log(`GPU: ${gpu.name}; ${calls} calls per operation, issued back to back`);
const rows = [];
for (const { name, kernel, args } of operations) {
  const run = () => backend.run(kernel, args as never);
  const native = toNativeKernelArgs(args, (buffer) => (buffer as { pointer?: bigint }).pointer!);
  const runNative = () => backend.native.run(backend.nativeContext, kernel, native);
  for (let i = 0; i < 20; i++) run();
  await backend.synchronize();
  const hostUs = perCallUs(run, calls);
  await backend.synchronize();
  const addonUs = perCallUs(runNative, calls);
  await backend.synchronize();
  // the addon reading a fresh argument object each call (as backend.run hands it one)
  const addonFreshUs = perCallUs(() => backend.native.run(backend.nativeContext, kernel, { ...native }), calls);
  await backend.synchronize();
  const validateUs = perCallUs(() => validateKernelArgs(kernel, args as never, backend.capabilities), calls * 5);
  const translateUs = perCallUs(
    () => toNativeKernelArgs(args, (buffer) => (buffer as { pointer?: bigint }).pointer!),
    calls * 5,
  );
  await backend.synchronize();
  backend.startProfile();
  for (let i = 0; i < 200; i++) run();
  const profile = await backend.stopProfile();
  const deviceUs = (profile.operations.reduce((sum, o) => sum + o.milliseconds, 0) * 1e3) / 200;
  const row = {
    operation: name,
    kernel,
    hostUs,
    addonUs,
    addonFreshArgumentsUs: addonFreshUs,
    validationAndTranslationUs: hostUs - addonUs,
    validateUs,
    translateUs,
    deviceUs,
  };
  rows.push(row);
  console.log(
    `${name.padEnd(32)} host ${hostUs.toFixed(1).padStart(6)} us (addon run ${addonUs.toFixed(1).padStart(6)}, fresh arguments ${addonFreshUs.toFixed(1).padStart(6)}; validate ${validateUs.toFixed(2)}, translate ${translateUs.toFixed(2)})  device ${deviceUs.toFixed(1).padStart(6)} us`,
  );
}
const uploadUs = perCallUs(() => backend.upload(pairs, pairValues), calls);
await backend.synchronize();
console.log(`${'upload (one layer pair table)'.padEnd(32)} host ${uploadUs.toFixed(1).padStart(6)} us`);
// a decoder layer: every operation but the embedding gather and the final argmax, plus its pair table
const layerRows = rows.filter((r) => !['embedding-gather', 'argmax'].includes(r.operation));
const layerHostUs = layerRows.reduce((s, r) => s + r.hostUs, 0) + uploadUs;
const layerDeviceUs = layerRows.reduce((s, r) => s + r.deviceUs, 0);
console.log(`one layer: host ${layerHostUs.toFixed(0)} us, device ${layerDeviceUs.toFixed(0)} us`);
writeResult(benchRoot, 'cuda-host-overhead.json', {
  benchmark: 'cuda-host-overhead',
  date: new Date().toISOString(),
  gpu: { name: gpu.name, computeCapability: gpu.computeCapability },
  commit: gitCommit(),
  addonBuild: probeCuda().build ?? null,
  shape: { batch: 1, hidden, heads, kvHeads, headDim, intermediate, vocab, kvLength, blockSize, weights: 'bf16' },
  callsPerOperation: calls,
  operations: rows,
  uploadPairTableUs: uploadUs,
  layer: { hostUs: layerHostUs, deviceUs: layerDeviceUs },
});
backend.dispose();
