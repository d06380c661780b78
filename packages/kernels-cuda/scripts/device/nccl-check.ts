/**
 * NCCL check on every visible GPU of the machine (one process, ncclCommInitAll, a stream per
 * device): an in-place sum all-reduce of known values, verified element by element, then the bus
 * bandwidth of a 256 MiB f32 all-reduce (NCCL's definition: 2 (n-1)/n bytes per byte reduced).
 * Writes $OUT/nccl-check.json.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCudaBackend, createNcclCommunicator, createNcclRankCommunicators, probeCuda } from '../../src/index.js';

const probe = probeCuda();
if (!probe.available) throw new Error(probe.reason);
const deviceCount = probe.devices.length;
const backends = probe.devices.map((_, device) => createCudaBackend({ device }));
const communicator = createNcclCommunicator(backends);
const count = 1_000_003;
const buffers = backends.map((backend, rank) => {
  const buffer = backend.createBuffer({ dtype: 'f32', elementCount: count });
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = (rank + 1) * ((i % 97) - 48);
  backend.upload(buffer, values);
  return buffer;
});
communicator.allReduceSum(buffers, count);
const rankSum = (deviceCount * (deviceCount + 1)) / 2;
let mismatches = 0;
for (const [rank, backend] of backends.entries()) {
  const result = (await backend.download(buffers[rank]!)) as Float32Array;
  for (let i = 0; i < count; i++) if (result[i] !== rankSum * ((i % 97) - 48)) mismatches++;
}
let busGbPerSecond: number | null = null;
if (deviceCount > 1) {
  const elements = 64 * 1024 * 1024;
  const big = backends.map((backend) => backend.createBuffer({ dtype: 'f32', elementCount: elements }));
  for (const [rank, backend] of backends.entries()) backend.fill(big[rank]!, 1);
  communicator.allReduceSum(big, elements);
  await Promise.all(backends.map((backend) => backend.synchronize()));
  const iterations = 10;
  const started = performance.now();
  for (let i = 0; i < iterations; i++) communicator.allReduceSum(big, elements);
  await Promise.all(backends.map((backend) => backend.synchronize()));
  const seconds = (performance.now() - started) / 1000 / iterations;
  busGbPerSecond = (elements * 4 * 2 * (deviceCount - 1)) / deviceCount / seconds / 1e9;
}
communicator.dispose();
// The runtime-shaped per-rank communicators: every rank calls the collective as its own async task.
const ranks = createNcclRankCommunicators(backends);
const rankBuffers = backends.map((backend, rank) => {
  const buffer = backend.createBuffer({ dtype: 'f32', elementCount: 4097 });
  backend.upload(
    buffer,
    Float32Array.from({ length: 4097 }, (_, i) => (rank + 1) * (i % 13)),
  );
  return buffer;
});
await Promise.all(ranks.map((rank, i) => rank.allReduceDeviceSum(rankBuffers[i]!, 4097)));
const hostArrays = ranks.map((_, rank) => Float32Array.from({ length: 5 }, (_, i) => rank + i));
await Promise.all(ranks.map((rank, i) => rank.allReduceSum(hostArrays[i]!)));
let rankMismatches = 0;
for (const [rank, backend] of backends.entries()) {
  const result = (await backend.download(rankBuffers[rank]!)) as Float32Array;
  for (let i = 0; i < 4097; i++) if (result[i] !== rankSum * (i % 13)) rankMismatches++;
  for (let i = 0; i < 5; i++)
    if (hostArrays[rank]![i] !== (deviceCount * (deviceCount - 1)) / 2 + deviceCount * i) rankMismatches++;
}
for (const rank of ranks) rank.dispose();
for (const backend of backends) backend.dispose();
mismatches += rankMismatches;
const report = {
  devices: probe.devices.map((d) => d.name),
  nccl: probe.libraries.nccl,
  count,
  mismatches,
  rankCommunicatorMismatches: rankMismatches,
  busGbPerSecond,
};
writeFileSync(join(process.env.OUT ?? '.', 'nccl-check.json'), `${JSON.stringify(report, null, 2)}\n`);
console.log(
  `NCCL all-reduce on ${deviceCount} GPU(s): ${mismatches} mismatches of ${count * deviceCount} (rank communicators: ${rankMismatches} of ${deviceCount * 4102}); bus bandwidth ${busGbPerSecond?.toFixed(0) ?? 'n/a (one GPU)'} GB/s`,
);
process.exitCode = mismatches === 0 ? 0 : 1;
