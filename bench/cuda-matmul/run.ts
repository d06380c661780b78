/**
 * Decode-time matmuls of the CUDA backend (issue 8 §5b: where a decode step's non-attention time goes):
 * the weight shapes one GPU holds of llama-3.1-8b at 2- and 4-way tensor parallelism, bf16 weights,
 * f32 activations of 1 to 128 rows, timed with CUDA events around each call (the backend's operation
 * profile: device time only, mean of back-to-back calls) against the
 * device-to-device copy bandwidth measured in the same run, each shape both ways the backend can run it:
 * its tensor-core decode kernel (f16/bf16 weights, up to 128 rows; the backend picks it where it was the
 * faster path here) and the earlier path (cuBLAS, or the CUDA-core streaming kernel up to 16 rows), with
 * the largest difference between their outputs. Also the host time of one `run('matmul')` call, and the fused shapes (q|k|v, gate|up).
 * Third, the backend's **tuned** choice (what it runs by default: above 16 rows it times the tensor-core
 * kernel, `cublasGemmEx` and cuBLASLt's first heuristic algorithms on a shape's first call and keeps
 * the fastest), with the tuner's table (every candidate's time) in the JSON.
 *
 * Run on a GPU machine: `npx tsx bench/cuda-matmul/run.ts` (or `run-device.sh matmul` from the bundle).
 * Writes bench/cuda-matmul/results/cuda-matmul.json (and $OUT/ when set).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CudaBackend, createCudaBackend } from '@fairkv/kernels-cuda';
import { gitCommit } from '../git-commit.js';

const here = dirname(fileURLToPath(import.meta.url));
const benchRoot = process.env.FAIRKV_BENCH_DIR ?? here;
const repeats = Number(process.env.FAIRKV_BENCH_REPEATS ?? '50');
const ROWS = (process.env.FAIRKV_MATMUL_ROWS ?? '1,16,32,58,124,244').split(',').map(Number);
const hidden = 4096;
const ffn = 14336;
const headDim = 128;

/** [name, outer, inner] of one GPU's weights at tensor parallelism `tp` (32 query, 8 kv heads). */
function shapes(tp: number): [string, number, number][] {
  const q = (32 / tp) * headDim;
  const kv = (8 / tp) * headDim;
  const f = ffn / tp;
  return [
    [`tp${tp} wq`, q, hidden],
    [`tp${tp} wk|wv`, kv, hidden],
    [`tp${tp} wo`, hidden, q],
    [`tp${tp} w-gate|w-up`, f, hidden],
    [`tp${tp} w-down`, hidden, f],
    [`tp${tp} fused q|k|v`, q + 2 * kv, hidden],
    [`tp${tp} fused gate|up`, 2 * f, hidden],
  ];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Device time of one `body` call: the backend's operation profile (an event pair around each enqueued
 * operation, so host time between calls does not count: small matmuls are faster on the GPU than the host
 * can enqueue them) averaged over `repeats` calls, the lowest of three such windows (a window with one
 * stall, e.g. another process on the GPU, does not decide), and the median host time of a call.
 */
async function timeMs(backend: CudaBackend, body: () => void): Promise<{ device: number; host: number }> {
  for (let i = 0; i < 3; i++) body();
  await backend.synchronize();
  const host: number[] = [];
  let device = Number.POSITIVE_INFINITY;
  for (let window = 0; window < 3; window++) {
    backend.startProfile();
    for (let i = 0; i < repeats; i++) {
      const started = performance.now();
      body();
      host.push(performance.now() - started);
    }
    const profile = await backend.stopProfile();
    device = Math.min(device, profile.busyMilliseconds / repeats);
  }
  return { device, host: median(host) };
}

const backend = createCudaBackend();
const gpu = backend.deviceProperties;
const copyBytes = 1 << 30;
const from = backend.createBuffer({ dtype: 'f32', elementCount: copyBytes / 4 });
const to = backend.createBuffer({ dtype: 'f32', elementCount: copyBytes / 4 });
const copy = await timeMs(backend, () =>
  backend.copy({ source: from, sourceOffset: 0, destination: to, destinationOffset: 0, elementCount: copyBytes / 4 }),
);
const copyGBs = (2 * copyBytes) / (copy.device * 1e6);
backend.disposeBuffer(from);
backend.disposeBuffer(to);
console.log(`GPU: ${gpu.name}; device-to-device copy ${copyGBs.toFixed(0)} GB/s (read + written)`);

const results: Record<string, unknown>[] = [];
const maxRows = Math.max(...ROWS);
for (const tp of [2, 4]) {
  for (const [name, outer, inner] of shapes(tp)) {
    const weight = backend.createBuffer({ dtype: 'bf16', elementCount: outer * inner });
    backend.upload(
      weight,
      Float32Array.from({ length: outer * inner }, (_, i) => Math.cos(i * 0.11) * 0.02),
    );
    const input = backend.createBuffer({ dtype: 'f32', elementCount: maxRows * inner });
    // inputs of both signs and several magnitudes (a constant input would hide row mix-ups)
    backend.upload(
      input,
      Float32Array.from({ length: maxRows * inner }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7))),
    );
    const output = backend.createBuffer({ dtype: 'f32', elementCount: maxRows * outer });
    const line: string[] = [];
    for (const rows of ROWS) {
      const figures: Record<string, { deviceMs: number; hostMs: number; weightGBs: number; ofCopy: number }> = {};
      const outputs: Float32Array[] = [];
      for (const [path, matmulPath] of [
        ['tensor-core', 2],
        ['previous', 1],
        ['tuned', 0],
      ] as const) {
        // matmulPath is read by the addon only (benchmarks): 2 = the tensor-core kernel, 1 = without it
        // (cublasGemmEx, or the streaming kernel up to 16 rows), 0 = the backend's default (tuned)
        const args = { input, weight, output, rowCount: rows, innerSize: inner, outerSize: outer, matmulPath };
        const t = await timeMs(backend, () => backend.run('matmul', args as never));
        outputs.push(await backend.download(output, { elementCount: rows * outer }));
        const gbs = (outer * inner * 2) / (t.device * 1e6);
        figures[path] = { deviceMs: t.device, hostMs: t.host, weightGBs: gbs, ofCopy: gbs / copyGBs };
      }
      /** Largest difference between outputs a and b over the largest |b|. */
      const relativeDifference = (a: Float32Array, b: Float32Array): number => {
        let scale = 0;
        let difference = 0;
        for (let i = 0; i < a.length; i++) {
          scale = Math.max(scale, Math.abs(b[i]!));
          difference = Math.max(difference, Math.abs(a[i]! - b[i]!));
        }
        return difference / scale;
      };
      const difference = relativeDifference(outputs[0]!, outputs[1]!);
      const tunedDifference = relativeDifference(outputs[2]!, outputs[1]!);
      const tc = figures['tensor-core']!;
      const previous = figures.previous!;
      const tuned = figures.tuned!;
      const chosen = backend
        .matmulChoices()
        .find((c) => c.innerSize === inner && c.outerSize === outer && c.maxRows >= rows && c.maxRows - 16 < rows);
      results.push({
        shape: name,
        outer,
        inner,
        rows,
        ...figures,
        tunedChoice: chosen?.chosen ?? 'fixed rule (16 rows or fewer)',
        maxDifferenceOverMaxAbs: difference,
        tunedMaxDifferenceOverMaxAbs: tunedDifference,
      });
      line.push(
        `${rows}: TC ${(tc.deviceMs * 1e3).toFixed(1)} us ${(100 * tc.ofCopy).toFixed(0)}%, cuBLAS ${(previous.deviceMs * 1e3).toFixed(1)} us ${(100 * previous.ofCopy).toFixed(0)}%, tuned ${(tuned.deviceMs * 1e3).toFixed(1)} us ${(100 * tuned.ofCopy).toFixed(0)}% [${chosen?.chosen ?? 'rule'}] (diff ${difference.toExponential(1)}, tuned ${tunedDifference.toExponential(1)})`,
      );
    }
    console.log(`${name} [${outer} x ${inner}]: ${line.join(', ')}`);
    for (const buffer of [weight, input, output]) backend.disposeBuffer(buffer);
  }
}
const hostMs = median(results.map((r) => (r['tensor-core'] as { hostMs: number }).hostMs));
console.log(`host time of one run('matmul'): ${(hostMs * 1e3).toFixed(1)} us (median over shapes)`);
const commit = gitCommit();
const report = {
  benchmark: 'cuda-matmul',
  gpu: gpu.name,
  copyGBs,
  rows: ROWS,
  repeats,
  results,
  matmulChoices: backend.matmulChoices(),
  host: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
  commit,
  date: new Date().toISOString(),
};
const json = `${JSON.stringify(report, null, 2)}\n`;
mkdirSync(join(benchRoot, 'results'), { recursive: true });
writeFileSync(join(benchRoot, 'results', 'cuda-matmul.json'), json);
if (process.env.OUT) writeFileSync(join(process.env.OUT, 'cuda-matmul.json'), json);
backend.dispose();
