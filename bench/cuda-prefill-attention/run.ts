/**
 * Prefill attention on one CUDA GPU: the contract's `prefill-attention` (f32 Q/K/V, causal, GQA,
 * observation-window scores) at the Llama-3.1-8B shape of one GPU (32 query heads, 8 kv heads, head
 * dim 128; 64 with FAIRKV_PREFILL_HEAD_DIM=64, Llama-3.2-1B's) and prompts of FAIRKV_PREFILL_TOKENS
 * (default 1024, 4096, 16384) tokens, measured in ONE run:
 *   1. the tensor-core kernel (the default), with an observation window of 32 rows, without one, and
 *      with the window and H2O's accumulated scores; the same with K/V rounded to bf16 (`kvRounding`),
 *      and with every product's operands in bf16 (`productRounding`, what a bf16 engine asks for: the
 *      16-bit tensor-core kernel);
 *   2. the element kernel (the `tensorCores: 0` benchmark knob), up to FAIRKV_PREFILL_ELEMENT_MAX
 *      tokens (default 4096: it takes seconds beyond);
 *   3. PyTorch scaled_dot_product_attention (causal) on the same shape in f32 (what the contract
 *      computes: with enable_gqa, and on its memory-efficient kernel with K/V expanded per query head)
 *      and in bf16 (the speed a 16-bit flash kernel reaches), unless FAIRKV_BENCH_TORCH=0.
 * Both kernels' outputs and window scores are checked against float64 on sampled rows of the data timed.
 *
 * Run on a GPU machine: `npx tsx bench/cuda-prefill-attention/run.ts` (or the esbuild bundle,
 * `run-device.sh prefill`). Writes bench/cuda-prefill-attention/results/cuda-prefill-attention.json
 * (and $OUT/ when set).
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DeviceBuffer, roundToDType } from '@fairkv/kernels';
import { type CudaBackend, createCudaBackend, probeCuda } from '@fairkv/kernels-cuda';
import { medianEventMs } from '../cuda-event-timing.js';
import { positiveIntegersFromEnv } from '../env-integers.js';
import { gitCommit } from '../git-commit.js';
import { writeResult } from '../write-result.js';

const here = dirname(fileURLToPath(import.meta.url));
const benchRoot = process.env.FAIRKV_BENCH_DIR ?? here;
/** Head dim (FAIRKV_PREFILL_HEAD_DIM: 128, Llama-3.1-8B's, by default; 64 is Llama-3.2-1B's, same head counts). */
const headDim = positiveIntegersFromEnv('FAIRKV_PREFILL_HEAD_DIM', '128')[0]!;
if (headDim !== 64 && headDim !== 128) throw new Error(`FAIRKV_PREFILL_HEAD_DIM: expected 64 or 128, got ${headDim}`);
const queryHeadCount = 32;
const kvHeadCount = 8;
const windowSize = 32;
const TOKENS = positiveIntegersFromEnv('FAIRKV_PREFILL_TOKENS', '1024,4096,16384');
const elementMax = positiveIntegersFromEnv('FAIRKV_PREFILL_ELEMENT_MAX', '4096')[0]!;
const repeats = positiveIntegersFromEnv('FAIRKV_BENCH_REPEATS', '10')[0]!;
const torchOff = process.env.FAIRKV_BENCH_TORCH === '0';
/** Query rows checked against float64 per prompt (spread over the prompt, the window's last row included). */
const SAMPLED_ROWS = 6;

/** Deterministic uniform values in [low, high). */
function uniform(count: number, seed: number, low: number, high: number): Float32Array {
  const values = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[i] = low + ((state >>> 8) / 2 ** 24) * (high - low);
  }
  return values;
}

/** Causal attention FLOPs (Q K^T and P V, a multiply-add as 2) of one prompt. */
function flops(tokens: number): number {
  return 2 * 2 * ((tokens * (tokens + 1)) / 2) * headDim * queryHeadCount;
}

/** float64 output row and softmax row of query token `t`, head `head`. */
function referenceRow(
  query: Float32Array,
  key: Float32Array,
  value: Float32Array,
  t: number,
  head: number,
): { output: Float64Array; probabilities: Float64Array } {
  const kvHead = Math.floor(head / (queryHeadCount / kvHeadCount));
  const scale = 1 / Math.sqrt(headDim);
  const q = query.subarray((t * queryHeadCount + head) * headDim, (t * queryHeadCount + head + 1) * headDim);
  const probabilities = new Float64Array(t + 1);
  let max = -Infinity;
  for (let k = 0; k <= t; k++) {
    const base = (k * kvHeadCount + kvHead) * headDim;
    let dot = 0;
    for (let d = 0; d < headDim; d++) dot += q[d]! * key[base + d]!;
    probabilities[k] = dot * scale;
    max = Math.max(max, probabilities[k]!);
  }
  let sum = 0;
  for (let k = 0; k <= t; k++) {
    probabilities[k] = Math.exp(probabilities[k]! - max);
    sum += probabilities[k]!;
  }
  const output = new Float64Array(headDim);
  for (let k = 0; k <= t; k++) {
    probabilities[k] = probabilities[k]! / sum;
    const base = (k * kvHeadCount + kvHead) * headDim;
    for (let d = 0; d < headDim; d++) output[d] = output[d]! + probabilities[k]! * value[base + d]!;
  }
  return { output, probabilities };
}

/** Largest `|a - e| / (|e| + rms(e))` over sampled rows of the output and of the window scores. */
function sampledError(
  host: { query: Float32Array; key: Float32Array; value: Float32Array },
  tokens: number,
  output: Float32Array,
  scores: Float32Array,
): { output: number; windowScores: number } {
  const rows = Array.from({ length: SAMPLED_ROWS }, (_, i) => Math.round((i * (tokens - 1)) / (SAMPLED_ROWS - 1)));
  let outputError = 0;
  let scoreError = 0;
  for (const [i, t] of rows.entries()) {
    const head = (i * 7) % queryHeadCount;
    const expected = referenceRow(host.query, host.key, host.value, t, head);
    const rms = (values: Float64Array) => Math.sqrt(values.reduce((s, v) => s + v * v, 0) / values.length);
    const outputRms = rms(expected.output);
    const base = (t * queryHeadCount + head) * headDim;
    for (let d = 0; d < headDim; d++)
      outputError = Math.max(
        outputError,
        Math.abs(output[base + d]! - expected.output[d]!) / (Math.abs(expected.output[d]!) + outputRms),
      );
    const w = t - (tokens - windowSize);
    if (w < 0) continue;
    const scoreRms = rms(expected.probabilities);
    const row = (head * windowSize + w) * tokens;
    for (let k = 0; k < tokens; k++) {
      const e = k <= t ? expected.probabilities[k]! : 0;
      scoreError = Math.max(scoreError, Math.abs(scores[row + k]! - e) / (Math.abs(e) + scoreRms));
    }
  }
  return { output: outputError, windowScores: scoreError };
}

type TorchResult =
  | {
      available: true;
      device: string;
      torch: string;
      /** f32 with enable_gqa (PyTorch's math path). */
      f32Ms: number;
      /** f32 on the memory-efficient kernel, K/V expanded to every query head (expansion not timed). */
      f32EfficientMs: number | null;
      /** Its error against float64 on sampled rows, as ours is measured. */
      f32EfficientError?: number;
      bf16Ms: number;
    }
  | { available: false; reason: string };

function runTorch(tokens: number): TorchResult {
  const python = process.env.FAIRKV_PYTHON ?? 'python3';
  const config = JSON.stringify({ tokens, queryHeadCount, kvHeadCount, headDim, repeats });
  const child = spawnSync(python, [join(benchRoot, 'torch_prefill.py'), config], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (child.status !== 0)
    return {
      available: false,
      reason: `${python} exited ${child.status}: ${(child.stderr ?? '').trim().split('\n').pop()}`,
    };
  return { available: true, ...JSON.parse(child.stdout.trim().split('\n').pop()!) };
}

async function measure(backend: CudaBackend, tokens: number) {
  const host = {
    query: uniform(tokens * queryHeadCount * headDim, 1 + tokens, -2, 2),
    key: uniform(tokens * kvHeadCount * headDim, 2 + tokens, -2, 2),
    value: uniform(tokens * kvHeadCount * headDim, 3 + tokens, -1, 1),
  };
  const input = (values: Float32Array, label: string) => {
    const buffer = backend.createBuffer({ dtype: 'f32', elementCount: values.length, label });
    backend.upload(buffer, values);
    return buffer;
  };
  const query = input(host.query, 'query');
  const key = input(host.key, 'key');
  const value = input(host.value, 'value');
  const output = backend.createBuffer({ dtype: 'f32', elementCount: host.query.length, label: 'output' });
  const windowScores = backend.createBuffer({
    dtype: 'f32',
    elementCount: queryHeadCount * windowSize * tokens,
    label: 'windowScores',
  });
  const accumulatedScores = backend.createBuffer({
    dtype: 'f32',
    elementCount: queryHeadCount * tokens,
    label: 'accumulatedScores',
  });
  // the window as its column sums: what the runtime asks for (every window-reading policy accepts them)
  const windowScoreSums = backend.createBuffer({
    dtype: 'f32',
    elementCount: queryHeadCount * tokens,
    label: 'windowScoreSums',
  });
  /** `kv`: K and V rounded to bf16 (`kvRounding`); `product`: every product's operands (`productRounding`). */
  type Knobs = { tensorCores?: 0; accumulated?: true; sums?: true; rounding?: 'kv' | 'product'; warpgroupMma?: 0 };
  const run = (window: boolean, knobs: Knobs = {}) =>
    backend.run('prefill-attention', {
      query,
      key,
      value,
      output,
      ...(window ? { windowScores } : {}),
      ...(knobs.sums ? { windowScoreSums } : {}),
      ...(knobs.accumulated ? { accumulatedScores } : {}),
      tokenCount: tokens,
      queryHeadCount,
      kvHeadCount,
      headDim,
      windowSize: window || knobs.sums ? windowSize : 0,
      scale: 1 / Math.sqrt(headDim),
      ...(knobs.tensorCores === 0 ? { tensorCores: 0 } : {}),
      ...(knobs.rounding === 'kv' ? { kvRounding: 'bf16' as const } : {}),
      ...(knobs.rounding === 'product' ? { productRounding: 'bf16' as const } : {}),
      ...(knobs.warpgroupMma === 0 ? { warpgroupMma: 0 } : {}),
    });
  // with kvRounding the float64 reference takes the rounded K and V, as a bf16 engine's pool holds them;
  // with productRounding the rounded Q too (and unrounded probabilities: the error shows their rounding)
  const bf16 = (values: Float32Array) => values.map((x) => roundToDType('bf16', x));
  const roundedHost = { ...host, key: bf16(host.key), value: bf16(host.value) };
  const productHost = { ...roundedHost, query: bf16(host.query) };
  const checked = async (knobs: Knobs = {}) => {
    backend.fill(output, Number.NaN);
    backend.fill(windowScores, Number.NaN);
    run(true, knobs);
    return sampledError(
      knobs.rounding === 'kv' ? roundedHost : knobs.rounding === 'product' ? productHost : host,
      tokens,
      (await backend.download(output)) as Float32Array,
      (await backend.download(windowScores)) as Float32Array,
    );
  };
  const tensorCoreError = await checked();
  const tensorCoresMs = medianEventMs(backend, () => run(true), repeats, 1);
  const withoutWindowMs = medianEventMs(backend, () => run(false), repeats, 1);
  // H2O's column sums too: every row's log-sum-exp kept, one more pass over the keys on tensor cores
  const withAccumulatedMs = medianEventMs(backend, () => run(true, { accumulated: true }), repeats, 1);
  // a bf16 engine's call: K and V rounded to bf16 (exact in TF32: two products per multiply, not three)
  const roundedError = await checked({ rounding: 'kv' });
  const roundedMs = medianEventMs(backend, () => run(true, { rounding: 'kv' }), repeats, 1);
  const roundedAccumulatedMs = medianEventMs(
    backend,
    () => run(true, { rounding: 'kv', accumulated: true }),
    repeats,
    1,
  );
  // what a bf16 engine asks for now: Q, K, V and the probabilities in bf16, on 16-bit tensor cores
  const productError = await checked({ rounding: 'product' });
  const productMs = medianEventMs(backend, () => run(true, { rounding: 'product' }), repeats, 1);
  const productNoWindowMs = medianEventMs(backend, () => run(false, { rounding: 'product' }), repeats, 1);
  // the runtime's call: the window's column sums instead of its rows
  const productWindowSumsMs = medianEventMs(backend, () => run(false, { rounding: 'product', sums: true }), repeats, 1);
  // the same on the mma.sync 16-bit kernel (where Hopper's warpgroup-MMA kernel takes it by default)
  const productMmaSyncError = await checked({ rounding: 'product', warpgroupMma: 0 });
  const productMmaSyncMs = medianEventMs(
    backend,
    () => run(true, { rounding: 'product', warpgroupMma: 0 }),
    repeats,
    1,
  );
  const productAccumulatedMs = medianEventMs(
    backend,
    () => run(true, { rounding: 'product', accumulated: true }),
    repeats,
    1,
  );
  let element: { milliseconds: number; error: { output: number; windowScores: number } } | undefined;
  if (tokens <= elementMax) {
    const error = await checked({ tensorCores: 0 });
    element = { milliseconds: medianEventMs(backend, () => run(true, { tensorCores: 0 }), 3, 1), error };
  }
  for (const buffer of [query, key, value, output, windowScores, accumulatedScores, windowScoreSums] as DeviceBuffer[])
    backend.disposeBuffer(buffer);
  return {
    tensorCoresMs,
    withoutWindowMs,
    withAccumulatedMs,
    tensorCoreError,
    element,
    rounded: { milliseconds: roundedMs, withAccumulatedScoresMs: roundedAccumulatedMs, errorVsFloat64: roundedError },
    product: {
      milliseconds: productMs,
      withoutWindowMs: productNoWindowMs,
      withWindowSumsMs: productWindowSumsMs,
      withAccumulatedScoresMs: productAccumulatedMs,
      errorVsFloat64: productError,
      mmaSync: { milliseconds: productMmaSyncMs, errorVsFloat64: productMmaSyncError },
    },
  };
}

async function main(): Promise<void> {
  const backend = createCudaBackend();
  const gpu = backend.deviceProperties;
  console.log(`GPU: ${gpu.name} (${gpu.multiprocessorCount} SMs)`);
  const prompts = [];
  for (const tokens of TOKENS) {
    const measured = await measure(backend, tokens);
    const torch: TorchResult = torchOff ? { available: false, reason: 'FAIRKV_BENCH_TORCH=0' } : runTorch(tokens);
    const tflops = (ms: number) => flops(tokens) / (ms * 1e9);
    const entry = {
      tokens,
      flops: flops(tokens),
      tensorCores: {
        milliseconds: measured.tensorCoresMs,
        tflops: tflops(measured.tensorCoresMs),
        withoutWindowMs: measured.withoutWindowMs,
        withAccumulatedScoresMs: measured.withAccumulatedMs,
        errorVsFloat64: measured.tensorCoreError,
      },
      kvRoundedBf16: {
        ...measured.rounded,
        tflops: tflops(measured.rounded.milliseconds),
        speedup: measured.tensorCoresMs / measured.rounded.milliseconds,
      },
      productRoundedBf16: {
        ...measured.product,
        tflops: tflops(measured.product.milliseconds),
        speedup: measured.tensorCoresMs / measured.product.milliseconds,
        speedupOverKvRounded: measured.rounded.milliseconds / measured.product.milliseconds,
      },
      element: measured.element
        ? {
            milliseconds: measured.element.milliseconds,
            tflops: tflops(measured.element.milliseconds),
            errorVsFloat64: measured.element.error,
            tensorCoreSpeedup: measured.element.milliseconds / measured.tensorCoresMs,
          }
        : { skipped: `longer than FAIRKV_PREFILL_ELEMENT_MAX=${elementMax}` },
      torch,
    };
    prompts.push(entry);
    const e = measured.tensorCoreError;
    console.log(
      `${tokens} tokens: tensor cores ${measured.tensorCoresMs.toFixed(3)} ms (${tflops(measured.tensorCoresMs).toFixed(1)} TFLOPS; ` +
        `no window ${measured.withoutWindowMs.toFixed(3)} ms; with accumulated scores ${measured.withAccumulatedMs.toFixed(3)} ms; error ${e.output.toExponential(1)} / ${e.windowScores.toExponential(1)}); ` +
        `K/V rounded to bf16 ${measured.rounded.milliseconds.toFixed(3)} ms (${(measured.tensorCoresMs / measured.rounded.milliseconds).toFixed(2)}x; with accumulated scores ${measured.rounded.withAccumulatedScoresMs.toFixed(3)} ms; error ${measured.rounded.errorVsFloat64.output.toExponential(1)} / ${measured.rounded.errorVsFloat64.windowScores.toExponential(1)}); ` +
        `products in bf16 ${measured.product.milliseconds.toFixed(3)} ms (${tflops(measured.product.milliseconds).toFixed(1)} TFLOPS, ${(measured.rounded.milliseconds / measured.product.milliseconds).toFixed(2)}x K/V rounded; on mma.sync ${measured.product.mmaSync.milliseconds.toFixed(3)} ms, error ${measured.product.mmaSync.errorVsFloat64.output.toExponential(1)}; no window ${measured.product.withoutWindowMs.toFixed(3)} ms; window sums (the runtime's call) ${measured.product.withWindowSumsMs.toFixed(3)} ms; with accumulated scores ${measured.product.withAccumulatedScoresMs.toFixed(3)} ms; error ${measured.product.errorVsFloat64.output.toExponential(1)} / ${measured.product.errorVsFloat64.windowScores.toExponential(1)}); ` +
        (measured.element
          ? `element kernel ${measured.element.milliseconds.toFixed(2)} ms (${(measured.element.milliseconds / measured.tensorCoresMs).toFixed(1)}x slower; error ${measured.element.error.output.toExponential(1)}); `
          : 'element kernel skipped; ') +
        (torch.available
          ? `torch f32 ${torch.f32Ms.toFixed(3)} ms (memory-efficient, K/V expanded: ${torch.f32EfficientMs?.toFixed(3) ?? 'unavailable'} ms, error ${torch.f32EfficientError?.toExponential(1) ?? '-'}), bf16 ${torch.bf16Ms.toFixed(3)} ms`
          : `torch skipped: ${torch.reason}`),
    );
  }
  backend.dispose();
  writeResult(benchRoot, 'cuda-prefill-attention.json', {
    benchmark: 'cuda-prefill-attention',
    date: new Date().toISOString(),
    gpu: { name: gpu.name, computeCapability: gpu.computeCapability, multiprocessors: gpu.multiprocessorCount },
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
    commit: gitCommit(),
    addonBuild: probeCuda().build ?? null,
    shape: {
      dtype: 'f32',
      queryHeadCount,
      kvHeadCount,
      headDim,
      windowSize,
      repeats,
      timing: 'median of CUDA-event-timed calls issued back to back',
    },
    prompts,
  });
}

await main();
