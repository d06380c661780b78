/**
 * Ragged decode attention on one CUDA GPU (issue 8, §5a): bf16 KV (FAIRKV_BENCH_POOL_DTYPE=f32: an f32
 * pool holding the same values, on the TF32 tensor-core path), head dim 128, GQA group 8, mixes of pair
 * lengths (DuoAttention's: some 32K, most 384; and a HeadKV-style one where nearly every pair has a length
 * of its own, `proportional`; FAIRKV_BENCH_MIXES picks), measured in ONE run against
 *   1. the device-to-device copy bandwidth (bytes read + written),
 *   2. PyTorch scaled_dot_product_attention on heads padded to the longest length,
 *   3. PyTorch SDPA with heads grouped by length class (one call per class),
 * counting only the bytes that must be read (each K and V row of each pair once).
 * Also checks the kernel against a float64 reference on sampled pairs of the same data.
 *
 * Also times the CUDA-core kernel (the tensor-core kernel turned off) on the same data.
 *
 * Run on a GPU machine: `npx tsx bench/cuda-decode-attention/run.ts` (or the esbuild bundle).
 * Writes bench/cuda-decode-attention/results/cuda-decode-attention.json (`...-f32.json` for f32 pools;
 * and $OUT/ when set).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bf16BitsToF32, type DeviceBuffer, f32ToBf16Bits } from '@fairkv/kernels';
import { type CudaBackend, createCudaBackend, probeCuda } from '@fairkv/kernels-cuda';
import { medianEventMs } from '../cuda-event-timing.js';
import { positiveIntegersFromEnv } from '../env-integers.js';
import { nameFromEnv, namesFromEnv } from '../env-names.js';
import { gitCommit } from '../git-commit.js';
import { writeResult } from '../write-result.js';
import { parseGateRows, proportionalLengths } from './proportional-lengths.js';

const here = dirname(fileURLToPath(import.meta.url));
const benchRoot = process.env.FAIRKV_BENCH_DIR ?? here;
const headDim = 128;
const groupSize = 8;
const kvHeadCount = 8;
/**
 * Requests per run (FAIRKV_BENCH_BATCHES, default 16 and 64): 16 is the issue's mix (128 pairs, about
 * 0.2-0.4 ms, where the kernel's fixed costs show), 64 a serving-sized batch of the same mix.
 */
const BATCHES = positiveIntegersFromEnv('FAIRKV_BENCH_BATCHES', '16,64');
/**
 * Tokens per pool block (FAIRKV_BENCH_BLOCK_SIZE, default 16, the runtime's default `kvBlockSize`): the
 * contiguous unit the shuffled pool is made of.
 */
const blockSize = positiveIntegersFromEnv('FAIRKV_BENCH_BLOCK_SIZE', '16')[0]!;
const longLength = 32768;
const shortLength = 384;
const repeats = Number(process.env.FAIRKV_BENCH_REPEATS ?? '30');
/** FAIRKV_BENCH_QUICK=1: one mix, no PyTorch (for profiling runs under ncu). */
const quick = process.env.FAIRKV_BENCH_QUICK === '1';
/** Work items per SM the sweep tries (FAIRKV_BENCH_SWEEP, comma-separated; the kernel's default is 8-16, 4 for small calls; a forced count is used as given). */
const SWEEP = positiveIntegersFromEnv('FAIRKV_BENCH_SWEEP', '4,8,16,32');
/** FAIRKV_BENCH_TORCH=0: every mix, no PyTorch (A/B runs of addon builds; PyTorch timed once elsewhere). */
const torchOff = process.env.FAIRKV_BENCH_TORCH === '0';
/** FAIRKV_BENCH_POOL_DTYPE: bf16 (the issue's shape, default) or f32 (the same bf16 values stored as f32). */
const poolDType = nameFromEnv('FAIRKV_BENCH_POOL_DTYPE', ['bf16', 'f32'] as const, 'bf16');
const elementBytes = poolDType === 'f32' ? 4 : 2;

interface Mix {
  name: string;
  /** Requests (each with kvHeadCount pairs). */
  batch: number;
  /** KV length of each pair. */
  lengthOf(request: number, kvHead: number): number;
}
/** DuoAttention's mixes: `longHeads` of a request's kv heads keep the context, the rest the streaming window. */
const duoMix = (name: string, batch: number, longHeads: number): Mix => ({
  name,
  batch,
  lengthOf: (request, kvHead) => ((kvHead + request) % kvHeadCount < longHeads ? longLength : shortLength),
});
/**
 * The HeadKV-style mix (`proportional`): each request's budget of one layer (8,192 tokens per head on
 * average, a quarter of the context: about the quarter-long mix's bytes) spread over its kv heads in
 * proportion to their DuoAttention gates times a per-request factor exp(0.5 z), at least the streaming
 * window and at most the context (proportional-lengths.ts), so nearly every pair has a length of its own.
 * Gates: FAIRKV_BENCH_GATES (default: Meta-Llama-3.1-8B-Instruct's in ../shared), layer
 * FAIRKV_BENCH_GATE_LAYER (default 3, whose gates spread from 0.07 to 1.00).
 */
const GATES_FILE =
  process.env.FAIRKV_BENCH_GATES ??
  join(here, '../../../shared/profiles/duo-attention/Meta-Llama-3.1-8B-Instruct/full_attention_heads.tsv');
const GATE_LAYER = Number(process.env.FAIRKV_BENCH_GATE_LAYER ?? '3');
function proportionalMix(batch: number): Mix | undefined {
  if (!existsSync(GATES_FILE)) {
    console.log(`proportional mix skipped: no gate file at ${GATES_FILE} (FAIRKV_BENCH_GATES)`);
    return undefined;
  }
  const gates = parseGateRows(readFileSync(GATES_FILE, 'utf8'))[GATE_LAYER];
  if (gates?.length !== kvHeadCount) {
    throw new Error(`FAIRKV_BENCH_GATE_LAYER ${GATE_LAYER}: ${GATES_FILE} has no row of ${kvHeadCount} gates there`);
  }
  const lengths = proportionalLengths(gates, batch, {
    budgetPerHead: longLength / 4,
    min: shortLength,
    max: longLength,
    spread: 0.5,
  });
  return { name: 'proportional', batch, lengthOf: (request, kvHead) => lengths[request]![kvHead]! };
}
const MIX_NAMES = ['quarter-long', 'half-long', 'proportional'] as const;
/** Mixes to run (FAIRKV_BENCH_MIXES, comma-separated; default all three). */
const mixNames = namesFromEnv('FAIRKV_BENCH_MIXES', MIX_NAMES) ?? MIX_NAMES;
const MIXES: Mix[] = BATCHES.flatMap((batch) =>
  [
    mixNames.includes('quarter-long') ? duoMix('quarter-long', batch, 2) : undefined,
    mixNames.includes('half-long') ? duoMix('half-long', batch, 4) : undefined,
    mixNames.includes('proportional') ? proportionalMix(batch) : undefined,
  ].filter((mix): mix is Mix => mix !== undefined),
);

/** Times `body` with CUDA events: the median over `repeats` single launches (after 3 warm-up calls). */
function timeMs(backend: CudaBackend, body: () => void, count = repeats): number {
  return medianEventMs(backend, body, count);
}

/**
 * One call with the kernels' timeline (the benchmark-only `trace` argument, see kernels.h): when the
 * schedule was built (by the tensor-core kernel's first block), when each attention warp started (after its dependency wait) and ended, on which
 * SM and with how many 16-token stages, and when the combine blocks ran; microseconds from the first
 * stamp. Shows where a call's fixed cost goes, and whether warps that end late are slow SMs (the
 * spread of SM means) or slow warps within an SM (the spread inside each SM).
 */
async function traceCall(backend: CudaBackend, pairCount: number, call: (trace: DeviceBuffer) => void) {
  // DecodeTraceLayout (kernels.h): 2 words of schedule, 4 per warp (room for 16 per SM), 2 per
  // combine block (one per pair and query head).
  const warpCount = backend.deviceProperties.multiprocessorCount * 16;
  const warpWord = (warp: number) => 2 + 4 * warp;
  const combineWord = (block: number) => warpWord(warpCount) + 2 * block;
  const combineBlocks = pairCount * 8 * Math.ceil(groupSize / 8);
  const words = combineWord(combineBlocks);
  const buffer = backend.createBuffer({ dtype: 'i32', elementCount: 2 * words, label: 'trace' });
  backend.fill(buffer, 0);
  call(buffer);
  const raw = (await backend.download(buffer)) as Int32Array;
  backend.disposeBuffer(buffer);
  const stamps = new BigUint64Array(raw.buffer, raw.byteOffset, words);
  const warps = Array.from({ length: warpCount }, (_, w) => ({
    index: w,
    start: stamps[warpWord(w)]!,
    end: stamps[warpWord(w) + 1]!,
    sm: Number(stamps[warpWord(w) + 2]!),
    stages: Number(stamps[warpWord(w) + 3]!),
  })).filter((warp) => warp.end !== 0n);
  const combine = Array.from({ length: combineBlocks }, (_, b) => ({
    start: stamps[combineWord(b)]!,
    end: stamps[combineWord(b) + 1]!,
  })).filter((block) => block.end !== 0n);
  const all = [stamps[0]!, ...warps.map((warp) => warp.start), ...combine.map((block) => block.start)];
  // the earliest stamp (bigints: Math.min does not take them)
  const origin = all.filter((time) => time !== 0n).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))[0]!;
  const us = (time: bigint) => Number(((time - origin) / 10n) * 10n) / 1000;
  const round = (value: number) => Number(value.toFixed(1));
  const percentiles = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const at = (q: number) => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN);
    return { min: at(0), p10: at(0.1), p50: at(0.5), p90: at(0.9), max: at(1) };
  };
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  const bySm = new Map<number, number[]>();
  for (const warp of warps) bySm.set(warp.sm, [...(bySm.get(warp.sm) ?? []), us(warp.end)]);
  const smMeans = [...bySm.values()].map(mean);
  const withinSm = [...bySm.values()].map((ends) => Math.max(...ends) - Math.min(...ends));
  return {
    scheduleUs: stamps[0] === 0n ? null : [us(stamps[0]!), us(stamps[1]!)],
    warps: warps.length,
    warpStartUs: percentiles(warps.map((warp) => us(warp.start))),
    warpEndUs: percentiles(warps.map((warp) => us(warp.end))),
    stagesPerWarp: percentiles(warps.map((warp) => warp.stages)),
    meanEndByWarpInBlockUs: [0, 1, 2, 3].map((w) =>
      round(mean(warps.filter((warp) => warp.index % 4 === w).map((warp) => us(warp.end)))),
    ),
    endSpreadAcrossSmMeansUs: percentiles(smMeans),
    // each SM's mean warp end, by SM id: whether the same SMs end late call after call
    meanEndBySmUs: [...bySm.entries()].sort(([a], [b]) => a - b).map(([, ends]) => round(mean(ends))),
    endSpreadWithinSmUs: percentiles(withinSm),
    combineUs:
      combine.length === 0
        ? null
        : [Math.min(...combine.map((block) => us(block.start))), Math.max(...combine.map((block) => us(block.end)))],
    // whether the combine's span is blocks starting late (placement) or each block's own merge
    combineStartUs: combine.length === 0 ? null : percentiles(combine.map((block) => us(block.start))),
    combineBlockUs: combine.length === 0 ? null : percentiles(combine.map((block) => us(block.end) - us(block.start))),
  };
}

function copyBandwidth(backend: CudaBackend): { bytes: number; milliseconds: number; gbPerSecond: number } {
  const elements = 512 * 1024 * 1024; // 1 GiB of f16 each way
  const source = backend.createBuffer({ dtype: 'f16', elementCount: elements, label: 'copy source' });
  const destination = backend.createBuffer({ dtype: 'f16', elementCount: elements, label: 'copy destination' });
  backend.fill(source, 1.5);
  const milliseconds = timeMs(backend, () =>
    backend.copy({ source, destination, sourceOffset: 0, destinationOffset: 0, elementCount: elements }),
  );
  backend.disposeBuffer(source);
  backend.disposeBuffer(destination);
  const bytes = elements * 2 * 2;
  return { bytes, milliseconds, gbPerSecond: bytes / (milliseconds * 1e6) };
}

/** Deterministic pseudo-random bf16 bits in [-1, 1). */
function randomBf16(count: number, seed: number): Uint16Array {
  const out = new Uint16Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = f32ToBf16Bits((state >>> 8) / 8388608 - 1);
  }
  return out;
}

interface Layout {
  lengths: number[];
  pairs: Int32Array;
  blockTable: Int32Array;
  blockCount: number;
  bytesNeeded: number;
}

function buildLayout(mix: Mix): Layout {
  const lengths: number[] = [];
  const pairRows: number[] = [];
  let tableLength = 0;
  for (let request = 0; request < mix.batch; request++) {
    for (let kvHead = 0; kvHead < kvHeadCount; kvHead++) {
      const length = mix.lengthOf(request, kvHead);
      lengths.push(length);
      pairRows.push(request, kvHead, length, tableLength);
      tableLength += Math.ceil(length / blockSize);
    }
  }
  // Blocks in shuffled order: a fragmented pool, as after many requests came and went.
  const order = Array.from({ length: tableLength }, (_, i) => i);
  let state = 12345;
  for (let i = order.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const bytesNeeded = lengths.reduce((sum, length) => sum + length, 0) * headDim * 2 * elementBytes;
  return {
    lengths,
    pairs: Int32Array.from(pairRows),
    blockTable: Int32Array.from(order),
    blockCount: tableLength,
    bytesNeeded,
  };
}

/** float64 reference for one pair, read from host copies of the pool. */
function referencePair(
  layout: Layout,
  pool: Uint16Array,
  poolChunkElements: number,
  query: Float32Array,
  pair: number,
): Float64Array {
  const [row, kvHead, length, tableOffset] = layout.pairs.subarray(pair * 4, pair * 4 + 4) as unknown as number[];
  const out = new Float64Array(groupSize * headDim);
  const scale = 1 / Math.sqrt(headDim);
  const element = (block: number, offset: number) =>
    bf16BitsToF32(pool[(block * 2 * blockSize * headDim + offset) % poolChunkElements]!);
  for (let g = 0; g < groupSize; g++) {
    const q = query.subarray(((row! * kvHeadCount + kvHead!) * groupSize + g) * headDim);
    const scores = new Float64Array(length!);
    let max = -Infinity;
    for (let t = 0; t < length!; t++) {
      const block = layout.blockTable[tableOffset! + Math.floor(t / blockSize)]!;
      let dot = 0;
      for (let d = 0; d < headDim; d++) dot += q[d]! * element(block, (t % blockSize) * headDim + d);
      scores[t] = dot * scale;
      max = Math.max(max, scores[t]!);
    }
    let sum = 0;
    for (let t = 0; t < length!; t++) {
      scores[t] = Math.exp(scores[t]! - max);
      sum += scores[t]!;
    }
    for (let t = 0; t < length!; t++) {
      const block = layout.blockTable[tableOffset! + Math.floor(t / blockSize)]!;
      for (let d = 0; d < headDim; d++) {
        out[g * headDim + d]! += (scores[t]! / sum) * element(block, (blockSize + (t % blockSize)) * headDim + d);
      }
    }
  }
  return out;
}

async function measureMix(backend: CudaBackend, mix: Mix, copyGbPerSecond: number) {
  const layout = buildLayout(mix);
  const poolElements = layout.blockCount * 2 * blockSize * headDim;
  const pool = backend.createBuffer({ dtype: poolDType, elementCount: poolElements, label: 'kv pool' });
  // Fill the pool with 32 M random bf16 values repeated (uploading 1 GB from JS would dominate the run);
  // an f32 pool holds the same values.
  const chunkElements = 32 * 1024 * 1024;
  const chunk = randomBf16(chunkElements, 7);
  const first = chunk.subarray(0, Math.min(chunkElements, poolElements));
  backend.upload(pool, poolDType === 'f32' ? Float32Array.from(first, bf16BitsToF32) : first);
  for (let offset = chunkElements; offset < poolElements; offset += chunkElements) {
    const count = Math.min(chunkElements, poolElements - offset);
    backend.copy({ source: pool, sourceOffset: 0, destination: pool, destinationOffset: offset, elementCount: count });
  }
  const queryCount = mix.batch * kvHeadCount * groupSize * headDim;
  const queryHost = new Float32Array(queryCount);
  for (let i = 0; i < queryCount; i++) queryHost[i] = Math.sin(i * 0.37) * 2;
  const query = backend.createBuffer({ dtype: 'f32', elementCount: queryCount, label: 'query' });
  const output = backend.createBuffer({ dtype: 'f32', elementCount: queryCount, label: 'output' });
  const pairs = backend.createBuffer({ dtype: 'i32', elementCount: layout.pairs.length, label: 'pairs' });
  const blockTable = backend.createBuffer({
    dtype: 'i32',
    elementCount: layout.blockTable.length,
    label: 'block table',
  });
  backend.upload(query, queryHost);
  backend.upload(pairs, layout.pairs);
  backend.upload(blockTable, layout.blockTable);
  // The same blocks in pool order (an unfragmented pool): what reading through a shuffled table costs.
  const inOrderTable = backend.createBuffer({
    dtype: 'i32',
    elementCount: layout.blockTable.length,
    label: 'in order',
  });
  backend.upload(
    inOrderTable,
    Int32Array.from(layout.blockTable, (_, i) => i),
  );
  backend.fill(output, Number.NaN);
  interface Variant {
    /** Not part of the contract: the CUDA kernel's work-split knob (default 8-16 items per SM). */
    itemsPerMultiprocessor?: number;
    /** Not part of the contract either: 0 launches the three kernels plainly (no programmatic dependent launch). */
    dependentLaunch?: 0;
    /** Not part of the contract: a buffer for the kernels' timeline (see traceCall). */
    trace?: DeviceBuffer;
    /** Not part of the contract: 0 runs the schedule as its own kernel before the tensor-core kernel. */
    fusedSchedule?: 0;
    /** Not part of the contract: 0 has the tensor-core kernel's block 0 build the schedule for every block. */
    localSchedule?: 0;
    /** Not part of the contract: 0 streams the stages with per-lane cp.async instead of bulk copies. */
    bulkCopies?: 0;
    /** Not part of the contract: 0 runs the CUDA-core kernel instead of the tensor-core one. */
    tensorCores?: 0;
    inOrder?: true;
  }
  const run = ({ inOrder, ...knobs }: Variant = {}) =>
    backend.run('ragged-decode-attention', {
      query,
      output,
      pairs,
      pool,
      blockTable: inOrder ? inOrderTable : blockTable,
      blockCount: layout.blockCount,
      blockSize,
      headDim,
      blockTableLength: layout.blockTable.length,
      rowCount: mix.batch,
      kvHeadCount,
      groupSize,
      pairCount: layout.lengths.length,
      scale: 1 / Math.sqrt(headDim),
      ...knobs,
    });
  const sweep: Record<string, number> = {};
  for (const items of SWEEP) sweep[items] = timeMs(backend, () => run({ itemsPerMultiprocessor: items }));
  const milliseconds = timeMs(backend, () => run());
  const elementCopiesMs = timeMs(backend, () => run({ bulkCopies: 0 }));
  const cudaCoresMs = timeMs(backend, () => run({ tensorCores: 0 }), Math.min(repeats, 10));
  const plainLaunchMs = timeMs(backend, () => run({ dependentLaunch: 0 }));
  const inOrderMs = timeMs(backend, () => run({ inOrder: true }));
  const scheduleKernelMs = timeMs(backend, () => run({ fusedSchedule: 0 }));
  const blockZeroScheduleMs = timeMs(backend, () => run({ localSchedule: 0 }));
  const timeline = await traceCall(backend, layout.lengths.length, (buffer) => run({ trace: buffer }));
  // Host cost of one enqueue (validation + N-API + the launches), measured without waiting.
  backend.native.synchronizeNow(backend.nativeContext);
  const hostStarted = performance.now();
  for (let i = 0; i < 10; i++) run();
  const hostEnqueueMs = (performance.now() - hostStarted) / 10;
  backend.native.synchronizeNow(backend.nativeContext);
  backend.disposeBuffer(inOrderTable);
  backend.fill(output, Number.NaN);
  run();
  return {
    layout,
    pool,
    query,
    queryHost,
    output,
    pairs,
    blockTable,
    chunk,
    chunkElements,
    milliseconds,
    plainLaunchMs,
    inOrderMs,
    scheduleKernelMs,
    blockZeroScheduleMs,
    elementCopiesMs,
    cudaCoresMs,
    timeline,
    sweep,
    hostEnqueueMs,
    copyGbPerSecond,
  };
}

async function main(): Promise<void> {
  const backend = createCudaBackend();
  const gpu = backend.deviceProperties;
  console.log(`GPU: ${gpu.name} (${gpu.multiprocessorCount} SMs, ${(gpu.totalMemoryBytes / 2 ** 30).toFixed(0)} GiB)`);
  const copy = copyBandwidth(backend);
  console.log(`device-to-device copy: ${copy.gbPerSecond.toFixed(0)} GB/s (read + written)`);
  const mixes = [];
  for (const mix of quick ? MIXES.slice(0, 1) : MIXES) {
    const measured = await measureMix(backend, mix, copy.gbPerSecond);
    const { layout } = measured;
    const ours = {
      milliseconds: measured.milliseconds,
      gbPerSecond: layout.bytesNeeded / (measured.milliseconds * 1e6),
      hostEnqueueMs: measured.hostEnqueueMs,
      withoutDependentLaunchMs: measured.plainLaunchMs,
      blocksInPoolOrderMs: measured.inOrderMs,
      withScheduleKernelMs: measured.scheduleKernelMs,
      withBlockZeroScheduleMs: measured.blockZeroScheduleMs,
      withElementCopiesMs: measured.elementCopiesMs,
      cudaCoreKernelMs: measured.cudaCoresMs,
      timeline: measured.timeline,
      itemsPerMultiprocessorSweepMs: measured.sweep,
    };
    // Correctness on sampled pairs (the first longest and the first shortest) of the very data timed.
    const result = (await backend.download(measured.output)) as Float32Array;
    const longPair = layout.lengths.indexOf(Math.max(...layout.lengths));
    const shortPair = layout.lengths.indexOf(Math.min(...layout.lengths));
    let worstRelativeError = 0;
    for (const pair of [longPair, shortPair]) {
      const reference = referencePair(layout, measured.chunk, measured.chunkElements, measured.queryHost, pair);
      const [row, kvHead] = [layout.pairs[pair * 4]!, layout.pairs[pair * 4 + 1]!];
      const base = (row * kvHeadCount + kvHead) * groupSize * headDim;
      let error = 0;
      let norm = 0;
      for (let i = 0; i < reference.length; i++) {
        error += (result[base + i]! - reference[i]!) ** 2;
        norm += reference[i]! ** 2;
      }
      worstRelativeError = Math.max(worstRelativeError, Math.sqrt(error / norm));
    }
    for (const buffer of [
      measured.pool,
      measured.query,
      measured.output,
      measured.pairs,
      measured.blockTable,
    ] as DeviceBuffer[]) {
      backend.disposeBuffer(buffer);
    }
    const torch: TorchResult = quick
      ? { available: false, reason: 'quick run' }
      : torchOff
        ? { available: false, reason: 'FAIRKV_BENCH_TORCH=0' }
        : runTorch(mix, layout);
    const floorMs = layout.bytesNeeded / (copy.gbPerSecond * 1e6);
    const entry = {
      mix: mix.name,
      batch: mix.batch,
      pairs: layout.lengths.length,
      longPairs: layout.lengths.filter((length) => length === longLength).length,
      distinctLengths: new Set(layout.lengths).size,
      bytesNeeded: layout.bytesNeeded,
      floorMsAtCopyBandwidth: floorMs,
      ours: {
        ...ours,
        fractionOfCopyBandwidth: ours.gbPerSecond / copy.gbPerSecond,
        relativeErrorVsFloat64: worstRelativeError,
      },
      torch,
    };
    mixes.push(entry);
    console.log(`${mix.name}, batch ${mix.batch} timeline (us): ${JSON.stringify(measured.timeline)}`);
    console.log(
      `${mix.name}, batch ${mix.batch}: ours ${ours.milliseconds.toFixed(3)} ms (${ours.withoutDependentLaunchMs.toFixed(3)} without dependent launch; blocks in pool order ${ours.blocksInPoolOrderMs.toFixed(3)}; schedule kernel first ${ours.withScheduleKernelMs.toFixed(3)}; schedule by block 0 ${ours.withBlockZeroScheduleMs.toFixed(3)}; element copies ${ours.withElementCopiesMs.toFixed(3)}; CUDA-core kernel ${ours.cudaCoreKernelMs.toFixed(3)}; host enqueue ${ours.hostEnqueueMs.toFixed(3)} ms; by items/SM ${JSON.stringify(measured.sweep)}) = ${ours.gbPerSecond.toFixed(0)} GB/s (${((100 * ours.gbPerSecond) / copy.gbPerSecond).toFixed(1)}% of copy), rel.err ${worstRelativeError.toExponential(2)}; ` +
        (torch.available
          ? `torch padded ${torch.paddedMs === null ? 'out of memory' : `${torch.paddedMs.toFixed(3)} ms`}, grouped ${torch.groupedMs.toFixed(3)} ms (${torch.groupedGbPerSecond.toFixed(0)} GB/s; each call from an idle GPU ${torch.groupedSyncedMs.toFixed(3)} ms), grouped from pages ${torch.pagedGroupedMs === null ? 'out of memory' : `${torch.pagedGroupedMs.toFixed(3)} ms`}`
          : `torch skipped: ${torch.reason}`),
    );
  }
  backend.dispose();
  const report = {
    benchmark: 'cuda-decode-attention',
    date: new Date().toISOString(),
    gpu: {
      name: gpu.name,
      computeCapability: gpu.computeCapability,
      multiprocessors: gpu.multiprocessorCount,
      memoryBytes: gpu.totalMemoryBytes,
    },
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
    commit: gitCommit(),
    addonBuild: probeCuda().build ?? null,
    shape: {
      dtype: poolDType,
      headDim,
      groupSize,
      kvHeadCount,
      batches: BATCHES,
      blockSize,
      longLength,
      shortLength,
      repeats,
      timing: 'median of CUDA-event-timed launches',
    },
    copy,
    mixes,
  };
  writeResult(benchRoot, poolDType === 'f32' ? 'cuda-decode-attention-f32.json' : 'cuda-decode-attention.json', report);
}

type TorchResult =
  | {
      available: true;
      device: string;
      /** null where the padded call ran out of memory (f32 at batch 64) */
      paddedMs: number | null;
      groupedMs: number;
      /** The grouped path with each call started on an idle GPU (the host's dispatch inside the interval). */
      groupedSyncedMs: number;
      /** The grouped calls on K/V in a shuffled paged pool like ours: each class's blocks gathered, then SDPA (null: out of memory). */
      pagedGroupedMs: number | null;
      pagedGroupedGbPerSecond: number | null;
      paddedGbPerSecond: number | null;
      groupedGbPerSecond: number;
      classes: unknown;
    }
  | { available: false; reason: string };

function runTorch(mix: Mix, layout: Layout): TorchResult {
  const python = process.env.FAIRKV_PYTHON ?? 'python3';
  const config = JSON.stringify({
    batch: mix.batch,
    kvHeadCount,
    groupSize,
    headDim,
    // each pair's length, request by request (kv head fastest), as the layout holds them
    lengths: layout.lengths,
    repeats,
    dtype: poolDType,
    blockSize,
  });
  const child = spawnSync(python, [join(benchRoot, 'torch_sdpa.py'), config], { encoding: 'utf8', timeout: 300_000 });
  if (child.status !== 0)
    return {
      available: false,
      reason: `${python} exited ${child.status}: ${(child.stderr ?? '').trim().split('\n').pop()}`,
    };
  return { available: true, ...JSON.parse(child.stdout.trim().split('\n').pop()!) };
}

await main();
