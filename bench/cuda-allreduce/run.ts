/**
 * NCCL all-reduce at decode sizes (issue 8 §5b: the two all-reduces per layer of a tensor-parallel
 * decode step): one process drives every visible GPU (`createNcclCommunicator`: ncclCommInitAll, a
 * stream per device, grouped calls), an in-place sum of `rows x 4096` elements for the row counts of the
 * end-to-end plans, in f32 (what the runtime reduces) and bf16 (half the bytes), plus one large size
 * for the bus bandwidth. Two figures per size: the device time of one all-reduce (the backend's
 * operation profile on every GPU, the slowest GPU's mean: it includes waiting for the other GPUs'
 * launches) and the wall time per all-reduce of a back-to-back loop (what a step pays when nothing else
 * overlaps). NCCL's own environment (NCCL_ALGO, NCCL_PROTO...) is honoured, so runs can compare them;
 * NCCL_NVLS_ENABLE stays 0 as the machines set it.
 *
 * Run on a multi-GPU machine: `npx tsx bench/cuda-allreduce/run.ts` (or `run-device.sh allreduce`).
 * Writes bench/cuda-allreduce/results/cuda-allreduce.json (and $OUT/ when set).
 */
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCudaBackend, createNcclCommunicator, probeCuda } from '@fairkv/kernels-cuda';
import { positiveIntegersFromEnv } from '../env-integers.js';
import { gitCommit } from '../git-commit.js';
import { writeResult } from '../write-result.js';

const here = dirname(fileURLToPath(import.meta.url));
const benchRoot = process.env.FAIRKV_BENCH_DIR ?? here;
const iterations = Number(process.env.FAIRKV_BENCH_REPEATS ?? '200');
const ROWS = positiveIntegersFromEnv('FAIRKV_ALLREDUCE_ROWS', '1,16,58,124,244');
const hidden = 4096;

const probe = probeCuda();
if (!probe.available) throw new Error(probe.reason);
const deviceCount = probe.devices.length;
if (deviceCount < 2) throw new Error(`an all-reduce needs at least 2 GPUs; this machine has ${deviceCount}`);
const backends = probe.devices.map((_, device) => createCudaBackend({ device }));
const communicator = createNcclCommunicator(backends);
const synchronizeAll = () => Promise.all(backends.map((backend) => backend.synchronize()));

const sizes = [...ROWS.map((rows) => ({ rows, elements: rows * hidden })), { rows: 0, elements: 64 * 1024 * 1024 }];
const results: Record<string, unknown>[] = [];
for (const dtype of ['f32', 'bf16'] as const) {
  for (const { rows, elements } of sizes) {
    const buffers = backends.map((backend) => backend.createBuffer({ dtype, elementCount: elements }));
    for (const [rank, buffer] of buffers.entries()) backends[rank]!.fill(buffer, 0.001 * (rank + 1));
    const loops = rows === 0 ? 10 : iterations;
    for (let i = 0; i < 5; i++) communicator.allReduceSum(buffers, elements);
    await synchronizeAll();
    // wall time of a back-to-back loop
    const started = performance.now();
    for (let i = 0; i < loops; i++) communicator.allReduceSum(buffers, elements);
    await synchronizeAll();
    const wallUs = ((performance.now() - started) * 1e3) / loops;
    // device time per all-reduce, each GPU's operation profile
    for (const backend of backends) backend.startProfile();
    for (let i = 0; i < loops; i++) communicator.allReduceSum(buffers, elements);
    const profiles = await Promise.all(backends.map((backend) => backend.stopProfile()));
    const deviceUs = profiles.map((profile) => {
      const operation = profile.operations.find((o) => o.name === 'all-reduce');
      return operation === undefined ? Number.NaN : (operation.milliseconds * 1e3) / operation.count;
    });
    const bytes = elements * (dtype === 'f32' ? 4 : 2);
    const slowestUs = Math.max(...deviceUs);
    const busGBs = (bytes * 2 * (deviceCount - 1)) / deviceCount / (wallUs * 1e3);
    results.push({ dtype, rows, elements, bytes, wallUs, deviceUs, busGBs });
    console.log(
      `${dtype} ${rows > 0 ? `${rows} rows` : 'large'} (${(bytes / 2 ** 20).toFixed(2)} MiB): ${wallUs.toFixed(1)} us per all-reduce back to back, device ${slowestUs.toFixed(1)} us (slowest GPU), bus ${busGBs.toFixed(0)} GB/s`,
    );
    for (const [rank, buffer] of buffers.entries()) backends[rank]!.disposeBuffer(buffer);
  }
}
communicator.dispose();
for (const backend of backends) backend.dispose();

const report = {
  benchmark: 'cuda-allreduce',
  gpus: probe.devices.map((d) => d.name),
  deviceCount,
  nccl: probe.libraries.nccl,
  ncclEnvironment: Object.fromEntries(Object.entries(process.env).filter(([key]) => key.startsWith('NCCL_'))),
  iterations,
  results,
  host: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
  commit: gitCommit(),
  addonBuild: probeCuda().build ?? null,
  date: new Date().toISOString(),
};
writeResult(benchRoot, 'cuda-allreduce.json', report);
