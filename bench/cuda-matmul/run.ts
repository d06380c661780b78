/**
 * Decode-time matmuls of the CUDA backend (issue 8 §5b: where a decode step's non-attention time goes):
 * the weight shapes one GPU holds of llama-3.1-8b at 2- and 4-way tensor parallelism, bf16 weights,
 * f32 activations of 1 to 128 rows, timed with CUDA events (median of back-to-back launches) against the
 * device-to-device copy bandwidth measured in the same run. Also the host time of one `run('matmul')`
 * call, and the fused shapes (q|k|v, gate|up) a fused projection would run instead.
 *
 * Run on a GPU machine: `npx tsx bench/cuda-matmul/run.ts` (or `run-device.sh matmul` from the bundle).
 * Writes bench/cuda-matmul/results/cuda-matmul.json (and $OUT/ when set).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CudaBackend, createCudaBackend } from '@fairkv/kernels-cuda';

const here = dirname(fileURLToPath(import.meta.url));
const benchRoot = process.env.FAIRKV_BENCH_DIR ?? here;
const repeats = Number(process.env.FAIRKV_BENCH_REPEATS ?? '50');
const ROWS = (process.env.FAIRKV_MATMUL_ROWS ?? '1,16,32,58,124').split(',').map(Number);
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

/** Median device milliseconds of one `body` call, timed with events around each of `repeats` calls. */
function timeMs(backend: CudaBackend, body: () => void): { device: number; host: number } {
  const native = backend.native;
  const context = backend.nativeContext;
  const events = Array.from({ length: repeats + 1 }, () => native.eventCreate(context));
  for (let i = 0; i < 3; i++) body();
  native.synchronizeNow(context);
  const host: number[] = [];
  native.eventRecord(context, events[0]!);
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    body();
    host.push(performance.now() - started);
    native.eventRecord(context, events[i + 1]!);
  }
  native.synchronizeNow(context);
  const device = events.slice(1).map((event, i) => native.eventElapsedMs(events[i]!, event));
  for (const event of events) native.eventDestroy(event);
  return { device: median(device), host: median(host) };
}

const backend = createCudaBackend();
const gpu = backend.deviceProperties;
const copyBytes = 1 << 30;
const from = backend.createBuffer({ dtype: 'f32', elementCount: copyBytes / 4 });
const to = backend.createBuffer({ dtype: 'f32', elementCount: copyBytes / 4 });
const copy = timeMs(backend, () =>
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
    backend.fill(weight, 0.01);
    const input = backend.createBuffer({ dtype: 'f32', elementCount: maxRows * inner });
    backend.fill(input, 0.5);
    const output = backend.createBuffer({ dtype: 'f32', elementCount: maxRows * outer });
    const line: string[] = [];
    for (const rows of ROWS) {
      const t = timeMs(backend, () =>
        backend.run('matmul', { input, weight, output, rowCount: rows, innerSize: inner, outerSize: outer }),
      );
      const weightBytes = outer * inner * 2;
      const gbs = weightBytes / (t.device * 1e6);
      results.push({
        shape: name,
        outer,
        inner,
        rows,
        deviceMs: t.device,
        hostMs: t.host,
        weightGBs: gbs,
        ofCopy: gbs / copyGBs,
      });
      line.push(`${rows}: ${(t.device * 1e3).toFixed(1)} us ${((100 * gbs) / copyGBs).toFixed(0)}%`);
    }
    console.log(`${name} [${outer} x ${inner}]: ${line.join(', ')}`);
    for (const buffer of [weight, input, output]) backend.disposeBuffer(buffer);
  }
}
const hostMs = median(results.map((r) => r.hostMs as number));
console.log(`host time of one run('matmul'): ${(hostMs * 1e3).toFixed(1)} us (median over shapes)`);
let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', 'HEAD']).toString().trim();
} catch {
  // the GPU machine's copy may not be a git checkout
}
const report = {
  benchmark: 'cuda-matmul',
  gpu: gpu.name,
  copyGBs,
  rows: ROWS,
  repeats,
  results,
  host: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
  commit,
  date: new Date().toISOString(),
};
const json = `${JSON.stringify(report, null, 2)}\n`;
mkdirSync(join(benchRoot, 'results'), { recursive: true });
writeFileSync(join(benchRoot, 'results', 'cuda-matmul.json'), json);
if (process.env.OUT) writeFileSync(join(process.env.OUT, 'cuda-matmul.json'), json);
backend.dispose();
