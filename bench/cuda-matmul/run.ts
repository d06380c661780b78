/**
 * Decode-time matmuls of the CUDA backend (issue 8 §5b: where a decode step's non-attention time goes):
 * the weight shapes one GPU holds of llama-3.1-8b at 2- and 4-way tensor parallelism, bf16 weights,
 * f32 activations of 1 to 244 rows, against the device-to-device copy bandwidth measured in the same
 * run, each shape every way the backend can run it: its tensor-core decode kernel (f16/bf16 weights up
 * to 128 rows, f32 up to 64), `cublasGemmEx`, the CUDA-core streaming kernel (up to 16 rows) and the backend's
 * automatic choice, with the largest difference of each output from cuBLAS's (and, f32 weights, the
 * largest error against float64 on 512 sampled outputs).
 *
 * Timing is what a decode step sees: **cold L2, back to back**. Before every call the stream overwrites
 * a buffer of twice the L2 (in a step, each weight comes from DRAM: a weight that stays in L2 between
 * repeated calls flatters the kernels that re-read it), and since that fill keeps the GPU busy while the
 * host enqueues the call, the call's event pair (the backend's operation profile) holds device time only.
 * Also the host time of one `run('matmul')` call.
 *
 * FAIRKV_MATMUL_DTYPE=f32 (or f16) stores the weights in that type instead of bf16 (f32: the tensor-core
 * kernel's TF32 split on `mma.sync`, up to 64 rows; no warpgroup-MMA form).
 *
 * Run on a GPU machine: `npx tsx bench/cuda-matmul/run.ts` (or `run-device.sh matmul` from the bundle).
 * Writes bench/cuda-matmul/results/cuda-matmul.json (`cuda-matmul-f32.json` etc. for other weight
 * dtypes; and $OUT/ when set).
 */
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCudaBackend, probeCuda } from '@fairkv/kernels-cuda';
import { median } from '../cuda-event-timing.js';
import { positiveIntegersFromEnv } from '../env-integers.js';
import { nameFromEnv, namesFromEnv } from '../env-names.js';
import { gitCommit } from '../git-commit.js';
import { writeResult } from '../write-result.js';

const here = dirname(fileURLToPath(import.meta.url));
const benchRoot = process.env.FAIRKV_BENCH_DIR ?? here;
const repeats = Number(process.env.FAIRKV_BENCH_REPEATS ?? '30');
const ROWS = positiveIntegersFromEnv('FAIRKV_MATMUL_ROWS', '1,16,32,58,124,244');
// tensor-parallel degrees whose shard shapes run (1: the whole llama-3.1-8b projections, one GPU)
const TPS = positiveIntegersFromEnv('FAIRKV_MATMUL_TP', '2,4');
const weightDType = nameFromEnv('FAIRKV_MATMUL_DTYPE', ['bf16', 'f16', 'f32'] as const, 'bf16');
const weightBytes = weightDType === 'f32' ? 4 : 2;
const hidden = 4096;
const ffn = 14336;
const headDim = 128;

/**
 * [name, outer, inner, segments] of one GPU's weights at tensor parallelism `tp` (32 query, 8 kv
 * heads); a fused projection appears twice: into one output, and split into its segments' outputs as
 * the runtime calls it (q | k | v, gate | up).
 */
function shapes(tp: number): [string, number, number, number[]][] {
  const q = (32 / tp) * headDim;
  const kv = (8 / tp) * headDim;
  const f = ffn / tp;
  return [
    [`tp${tp} wq`, q, hidden, [q]],
    [`tp${tp} wk|wv`, kv, hidden, [kv]],
    [`tp${tp} wo`, hidden, q, [hidden]],
    [`tp${tp} w-gate|w-up`, f, hidden, [f]],
    [`tp${tp} w-down`, hidden, f, [hidden]],
    [`tp${tp} fused q|k|v`, q + 2 * kv, hidden, [q + 2 * kv]],
    [`tp${tp} fused q|k|v split`, q + 2 * kv, hidden, [q, kv, kv]],
    [`tp${tp} fused gate|up`, 2 * f, hidden, [2 * f]],
    [`tp${tp} fused gate|up split`, 2 * f, hidden, [f, f]],
  ];
}

/**
 * `matmulPath` is read by the addon only (benchmarks): 0 = the backend's automatic choice, 1 = never
 * the tensor-core kernel (the streaming kernel up to 16 rows, cuBLAS above), 2 = the tensor-core kernel
 * wherever it applies, 3 = cublasGemmEx at any row count, 4 = the GEMV kernel (up to 4 rows, 8 with
 * f32). `bulkCopies: 0` (addon only too) makes the
 * tensor-core kernel copy its weight thread by thread instead of by bulk tensor copies (Hopper), and
 * `warpgroupMma: 0` keeps it on `mma.sync` where the warpgroup-MMA kernel (sm_90a) would run.
 */
const PATHS = [
  ['cublas', 3, {}],
  ['tensor-core', 2, {}],
  ['tensor-core-mma-sync', 2, { warpgroupMma: 0 }],
  ['tensor-core-element-copies', 2, { bulkCopies: 0 }],
  ['streaming', 1, {}],
  ['gemv', 4, {}],
  ['automatic', 0, {}],
] as const;
type PathName = (typeof PATHS)[number][0];

// FAIRKV_MATMUL_SHAPES="tp4 wk|wv,tp4 fused gate|up split" runs only the shapes named (e.g. under a
// profiler); FAIRKV_MATMUL_PATHS="cublas,tensor-core,automatic" only the paths named (the first of them
// to run is the reference the others' outputs are compared with: cuBLAS, when named)
const onlyShapes = namesFromEnv(
  'FAIRKV_MATMUL_SHAPES',
  TPS.flatMap((tp) => shapes(tp).map(([name]) => name)),
);
const onlyPaths = namesFromEnv(
  'FAIRKV_MATMUL_PATHS',
  PATHS.map(([path]) => path),
);
const flushMode = nameFromEnv('FAIRKV_MATMUL_FLUSH', ['write', 'read'] as const, 'write');
const backend = createCudaBackend();
const gpu = backend.deviceProperties;
const copyBytes = 1 << 30;
// twice the L2, overwritten before every timed call (FAIRKV_MATMUL_FLUSH=read: read instead, by an
// argmax over it, so the L2 holds no dirty lines when the call starts, as after a decode step's attention)
const flushRows = 1024;
const flushColumns = Math.ceil((2 * gpu.l2CacheBytes) / 4 / flushRows);
const flush = backend.createBuffer({ dtype: 'f32', elementCount: flushRows * flushColumns });
const flushWinners = backend.createBuffer({ dtype: 'i32', elementCount: flushRows });
backend.fill(flush, 0.5);
const flushL2 = (i: number) => {
  if (flushMode === 'write') backend.fill(flush, i);
  else backend.run('argmax', { logits: flush, output: flushWinners, rowCount: flushRows, vocabSize: flushColumns });
};

/**
 * Device time of one `body` call with a cold L2 (mean over `repeats` calls, each after `flushL2` over
 * `flush`; only the operation named `name` counts), and the median host time of a call.
 */
async function timeCold(name: string, body: () => void): Promise<{ device: number; host: number }> {
  for (let i = 0; i < 3; i++) body();
  await backend.synchronize();
  const host: number[] = [];
  backend.startProfile();
  for (let i = 0; i < repeats; i++) {
    flushL2(i);
    const started = performance.now();
    body();
    host.push(performance.now() - started);
  }
  const profile = await backend.stopProfile();
  const operation = profile.operations.find((o) => o.name === name);
  if (operation === undefined || operation.count !== repeats) {
    throw new Error(`profile has ${operation?.count ?? 0} '${name}' operations, expected ${repeats}`);
  }
  return { device: operation.milliseconds / repeats, host: median(host) };
}

const from = backend.createBuffer({ dtype: 'f32', elementCount: copyBytes / 4 });
const to = backend.createBuffer({ dtype: 'f32', elementCount: copyBytes / 4 });
const copy = await timeCold('copy', () =>
  backend.copy({ source: from, sourceOffset: 0, destination: to, destinationOffset: 0, elementCount: copyBytes / 4 }),
);
const copyGBs = (2 * copyBytes) / (copy.device * 1e6);
backend.disposeBuffer(from);
backend.disposeBuffer(to);
console.log(`GPU: ${gpu.name}; device-to-device copy ${copyGBs.toFixed(0)} GB/s (read + written)`);

const results: Record<string, unknown>[] = [];
const maxRows = Math.max(...ROWS);
for (const tp of TPS) {
  for (const [name, outer, inner, segments] of shapes(tp)) {
    if (onlyShapes && !onlyShapes.includes(name)) continue;
    const weight = backend.createBuffer({ dtype: weightDType, elementCount: outer * inner });
    const weightValues = Float32Array.from({ length: outer * inner }, (_, i) => Math.cos(i * 0.11) * 0.02);
    backend.upload(weight, weightValues);
    const input = backend.createBuffer({ dtype: 'f32', elementCount: maxRows * inner });
    // inputs of both signs and several magnitudes (a constant input would hide row mix-ups); with these
    // periodic values the outputs cancel heavily (the sum of |products| is about 80x the largest output),
    // so differences between f32 summation orders show
    const inputValues = Float32Array.from({ length: maxRows * inner }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
    backend.upload(input, inputValues);
    // one buffer per output segment; a split projection's segments are compared joined
    const outputs = segments.map((width) => backend.createBuffer({ dtype: 'f32', elementCount: maxRows * width }));
    const outputArgs = Object.fromEntries(
      outputs.flatMap((buffer, s) => [
        [s === 0 ? 'output' : `output${s + 1}`, buffer],
        [s === 0 ? 'outerSize' : `outerSize${s + 1}`, segments[s]!],
      ]),
    );
    const download = async (rows: number): Promise<Float32Array> => {
      const parts = await Promise.all(
        outputs.map((buffer, s) => backend.download(buffer, { elementCount: rows * segments[s]! })),
      );
      const joined = new Float32Array(rows * outer);
      for (let r = 0; r < rows; r++) {
        let column = 0;
        parts.forEach((part, s) => {
          joined.set(part.subarray(r * segments[s]!, (r + 1) * segments[s]!), r * outer + column);
          column += segments[s]!;
        });
      }
      return joined;
    };
    const line: string[] = [];
    for (const rows of ROWS) {
      const figures: Partial<
        Record<
          PathName,
          {
            deviceMs: number;
            hostMs: number;
            weightGBs: number;
            ofCopy: number;
            maxDifference: number;
            sampledErrorVsFloat64?: number;
          }
        >
      > = {};
      let reference: Float32Array | undefined;
      // f32 weights: float64 products of 512 sampled outputs (row, column), each path's largest error on
      // them over the largest output (the same scale as maxDifference)
      const samples =
        weightDType === 'f32'
          ? Array.from({ length: 512 }, (_, s) => {
              const row = (s * 7919) % rows;
              const column = (s * 104729) % outer;
              let exact = 0;
              for (let k = 0; k < inner; k++)
                exact += inputValues[row * inner + k]! * weightValues[column * inner + k]!;
              return { index: row * outer + column, exact };
            })
          : [];
      for (const [path, matmulPath, knobs] of PATHS) {
        // the tensor-core kernel: f16/bf16 up to 128 rows, f32 up to 64 (mma.sync only)
        if (path.startsWith('tensor-core') && rows > (weightDType === 'f32' ? 64 : 128)) continue;
        if (path === 'tensor-core-mma-sync' && weightDType === 'f32') continue; // the same kernel as 'tensor-core' there
        if (path === 'streaming' && rows > 16) continue; // above 16 rows path 1 is cuBLAS again
        if (path === 'gemv' && rows > (weightDType === 'f32' ? 8 : 4)) continue; // the GEMV kernel's rows
        if (onlyPaths && !onlyPaths.includes(path)) continue;
        const args = { input, weight, ...outputArgs, rowCount: rows, innerSize: inner, matmulPath, ...knobs };
        const t = await timeCold('matmul', () => backend.run('matmul', args as never));
        const result = await download(rows);
        reference ??= result;
        let scale = 0;
        let difference = 0;
        for (let i = 0; i < result.length; i++) {
          scale = Math.max(scale, Math.abs(reference[i]!));
          difference = Math.max(difference, Math.abs(result[i]! - reference[i]!));
        }
        const gbs = (outer * inner * weightBytes) / (t.device * 1e6);
        let sampledError = 0;
        for (const { index, exact } of samples) sampledError = Math.max(sampledError, Math.abs(result[index]! - exact));
        figures[path] = {
          deviceMs: t.device,
          hostMs: t.host,
          weightGBs: gbs,
          ofCopy: gbs / copyGBs,
          maxDifference: difference / scale,
          ...(samples.length > 0 ? { sampledErrorVsFloat64: sampledError / scale } : {}),
        };
      }
      results.push({ shape: name, outer, inner, segments, rows, ...figures });
      const cells = Object.entries(figures).map(
        ([path, f]) => `${path} ${(f.deviceMs * 1e3).toFixed(1)} us ${(100 * f.ofCopy).toFixed(0)}%`,
      );
      line.push(`${rows}: ${cells.join(', ')}`);
    }
    console.log(`${name} [${outer} x ${inner}]: ${line.join('; ')}`);
    for (const buffer of [weight, input, ...outputs]) backend.disposeBuffer(buffer);
  }
}
const automaticHostMs = results.flatMap((r) => (r.automatic ? [(r.automatic as { hostMs: number }).hostMs] : []));
if (automaticHostMs.length > 0) {
  const hostMs = median(automaticHostMs);
  console.log(`host time of one run('matmul'): ${(hostMs * 1e3).toFixed(1)} us (median over shapes)`);
}
const commit = gitCommit();
const report = {
  benchmark: 'cuda-matmul',
  gpu: gpu.name,
  weightDType,
  copyGBs,
  timing: `cold L2 (${flushMode === 'write' ? 'a fill' : 'a read'} of twice the L2 before each call), device time per call from the operation profile`,
  rows: ROWS,
  repeats,
  results,
  host: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
  commit,
  // the addon's targets: which kernels ran (sm_90a: the warpgroup-MMA matmul)
  addonBuild: probeCuda().build ?? null,
  date: new Date().toISOString(),
};
writeResult(benchRoot, weightDType === 'bf16' ? 'cuda-matmul.json' : `cuda-matmul-${weightDType}.json`, report);
backend.disposeBuffer(flush);
backend.disposeBuffer(flushWinners);
backend.dispose();
