/**
 * CPU backend kernel benchmark: matmul GFLOP/s (decode and prefill shapes, f32 and bf16 weights) and
 * ragged decode attention GB/s (KV bytes read per second over ragged per-head lengths, GQA).
 * Writes bench/kernels-cpu/results/kernels-cpu.json. Run: `npx tsx bench/kernels-cpu/run.ts`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { bytesPerElement, type DType } from '@fairkv/core';
import { type Backend, createCpuBackend, kvBlockElementCount, kvBlocksFor } from '@fairkv/kernels';
import { gitCommit } from '../git-commit.js';

/**
 * Times `run` after one warm-up, for at least `minSeconds` and 5 repetitions: the median, and the
 * fastest run (the better estimate of the kernel's own speed when other processes share the cores).
 */
function timeIt(
  run: () => void,
  minSeconds = 1.5,
  maxRepeats = 60,
): { medianSeconds: number; bestSeconds: number; repeats: number } {
  run();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < maxRepeats && (samples.length < 5 || (performance.now() - start) / 1000 < minSeconds)) {
    const t0 = performance.now();
    run();
    samples.push((performance.now() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return { medianSeconds: samples[Math.floor(samples.length / 2)]!, bestSeconds: samples[0]!, repeats: samples.length };
}

function randomFloats(length: number): Float32Array {
  const values = new Float32Array(length);
  for (let i = 0; i < length; i++) values[i] = Math.random() * 2 - 1;
  return values;
}

function benchMatmul(backend: Backend, rowCount: number, innerSize: number, outerSize: number, dtype: DType) {
  const input = backend.createBuffer({ dtype: 'f32', elementCount: rowCount * innerSize });
  const weight = backend.createBuffer({ dtype, elementCount: outerSize * innerSize });
  const output = backend.createBuffer({ dtype: 'f32', elementCount: rowCount * outerSize });
  backend.upload(input, randomFloats(rowCount * innerSize));
  backend.upload(weight, randomFloats(outerSize * innerSize));
  const { medianSeconds, bestSeconds, repeats } = timeIt(() =>
    backend.run('matmul', { input, weight, output, rowCount, innerSize, outerSize }),
  );
  for (const buffer of [input, weight, output]) backend.disposeBuffer(buffer);
  const flops = 2 * rowCount * innerSize * outerSize;
  const weightBytes = outerSize * innerSize * bytesPerElement(dtype);
  return {
    rowCount,
    innerSize,
    outerSize,
    weightDType: dtype,
    medianMs: medianSeconds * 1000,
    bestMs: bestSeconds * 1000,
    repeats,
    gflops: flops / bestSeconds / 1e9,
    gflopsAtMedian: flops / medianSeconds / 1e9,
    weightGBps: weightBytes / bestSeconds / 1e9,
  };
}

function benchDecodeAttention(
  backend: Backend,
  options: {
    batch: number;
    kvHeadCount: number;
    groupSize: number;
    headDim: number;
    long: number;
    short: number;
    dtype: DType;
  },
) {
  const { batch, kvHeadCount, groupSize, headDim, long, short, dtype } = options;
  const blockSize = 16;
  // half the (request, kv head) pairs long, half short: the imbalance per-head compression creates
  const lengths = Array.from({ length: batch * kvHeadCount }, (_, i) => (i % 2 === 0 ? long : short));
  const blockCounts = lengths.map((length) => kvBlocksFor(length, blockSize));
  const blockCount = blockCounts.reduce((a, b) => a + b, 0);
  const pool = backend.createBuffer({ dtype, elementCount: blockCount * kvBlockElementCount(blockSize, headDim) });
  const chunk = 1 << 20;
  for (let offset = 0; offset < pool.elementCount; offset += chunk) {
    backend.upload(pool, randomFloats(Math.min(chunk, pool.elementCount - offset)), offset);
  }
  // shuffled block ids, as a long-running pool would have them
  const ids = Array.from({ length: blockCount }, (_, i) => i).sort(() => Math.random() - 0.5);
  const blockTable = backend.createBuffer({ dtype: 'i32', elementCount: blockCount });
  backend.upload(blockTable, Int32Array.from(ids));
  const pairValues = new Int32Array(lengths.length * 4);
  let tableOffset = 0;
  lengths.forEach((length, pair) => {
    pairValues.set([Math.floor(pair / kvHeadCount), pair % kvHeadCount, length, tableOffset], pair * 4);
    tableOffset += blockCounts[pair]!;
  });
  const pairs = backend.createBuffer({ dtype: 'i32', elementCount: pairValues.length });
  backend.upload(pairs, pairValues);
  const queryCount = batch * kvHeadCount * groupSize * headDim;
  const query = backend.createBuffer({ dtype: 'f32', elementCount: queryCount });
  const output = backend.createBuffer({ dtype: 'f32', elementCount: queryCount });
  backend.upload(query, randomFloats(queryCount));
  const { medianSeconds, bestSeconds, repeats } = timeIt(() =>
    backend.run('ragged-decode-attention', {
      pool,
      blockTable,
      blockCount,
      blockSize,
      headDim,
      blockTableLength: blockCount,
      query,
      output,
      pairs,
      rowCount: batch,
      kvHeadCount,
      groupSize,
      pairCount: lengths.length,
      scale: 1 / Math.sqrt(headDim),
    }),
  );
  for (const buffer of [pool, blockTable, pairs, query, output]) backend.disposeBuffer(buffer);
  const tokens = lengths.reduce((a, b) => a + b, 0);
  const kvBytes = tokens * 2 * headDim * bytesPerElement(dtype);
  return {
    ...options,
    blockSize,
    kvTokens: tokens,
    kvBytes,
    medianMs: medianSeconds * 1000,
    bestMs: bestSeconds * 1000,
    repeats,
    kvGBps: kvBytes / bestSeconds / 1e9,
    kvGBpsAtMedian: kvBytes / medianSeconds / 1e9,
  };
}

const loadAtStart = os.loadavg();
const threadCounts = [1, Math.min(2, os.cpus().length), Math.min(8, os.cpus().length)].filter(
  (threads, index, all) => all.indexOf(threads) === index,
);
const matmul: (ReturnType<typeof benchMatmul> & { threads: number })[] = [];
const decodeAttention: (ReturnType<typeof benchDecodeAttention> & { threads: number })[] = [];
const shape = { batch: 8, kvHeadCount: 8, groupSize: 4, headDim: 128, long: 2048, short: 128 };
for (const threads of threadCounts) {
  const backend = createCpuBackend({ threads });
  const withThreads = <T>(result: T) => ({ ...result, threads });
  matmul.push(
    withThreads(benchMatmul(backend, 1, 4096, 4096, 'f32')),
    withThreads(benchMatmul(backend, 1, 4096, 4096, 'bf16')),
    withThreads(benchMatmul(backend, 16, 4096, 1024, 'f32')),
    withThreads(benchMatmul(backend, 128, 1024, 1024, 'f32')),
    withThreads(benchMatmul(backend, 128, 1024, 1024, 'bf16')),
  );
  decodeAttention.push(
    withThreads(benchDecodeAttention(backend, { ...shape, dtype: 'f32' })),
    withThreads(benchDecodeAttention(backend, { ...shape, dtype: 'bf16' })),
    withThreads(benchDecodeAttention(backend, { ...shape, groupSize: 8, dtype: 'f32' })),
    withThreads(
      benchDecodeAttention(backend, {
        batch: 16,
        kvHeadCount: 4,
        groupSize: 2,
        headDim: 8,
        long: 512,
        short: 1,
        dtype: 'f32',
      }),
    ),
  );
  backend.dispose();
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const result = {
  benchmark: 'kernels-cpu',
  date: new Date().toISOString(),
  loadAverageAtStart: loadAtStart,
  machine: {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryBytes: os.totalmem(),
    platform: `${os.platform()} ${os.arch()}`,
  },
  node: process.version,
  commit: gitCommit(root),
  backend: 'cpu (f64 accumulation; threads = calling thread + workers)',
  matmul,
  decodeAttention,
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/kernels-cpu.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
console.log(
  `machine: ${result.machine.cpu}, ${result.machine.cores} cores, load ${os.loadavg()[0]!.toFixed(1)}, node ${result.node}`,
);
for (const m of matmul) {
  console.log(
    `[${m.threads} thr] matmul ${m.rowCount}x${m.innerSize} · ${m.outerSize}x${m.innerSize}^T ${m.weightDType}: best ${m.bestMs.toFixed(2)} ms (median ${m.medianMs.toFixed(2)}), ${m.gflops.toFixed(2)} GFLOP/s (median ${m.gflopsAtMedian.toFixed(2)}), weights ${m.weightGBps.toFixed(2)} GB/s`,
  );
}
for (const d of decodeAttention) {
  console.log(
    `[${d.threads} thr] ragged decode attention batch ${d.batch} kvHeads ${d.kvHeadCount} group ${d.groupSize} headDim ${d.headDim} lengths ${d.long}/${d.short} ${d.dtype}: best ${d.bestMs.toFixed(2)} ms (median ${d.medianMs.toFixed(2)}), ${d.kvGBps.toFixed(2)} GB/s of KV (median ${d.kvGBpsAtMedian.toFixed(2)})`,
  );
}
