/**
 * Issue 8 §3 on a GPU machine: separate processes form one NCCL group through the TCP rendezvous
 * (`joinNcclRankOverTcp`: rank 0 serves the unique id, then `ncclCommInitRank`). The parent spawns one
 * process per GPU; each fills a buffer with rank + 1, all-reduces it on the GPU, and checks every
 * element equals 1 + 2 + ... + size; then times a 64 MiB all-reduce. Writes $OUT/nccl-multiprocess.json.
 *   node .device/nccl-multiprocess.mjs [size]
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createCudaBackend, joinNcclRankOverTcp, probeCuda } from '../../src/index.js';

async function child(rank: number, size: number, address: string): Promise<void> {
  const backend = createCudaBackend({ device: rank });
  const communicator = await joinNcclRankOverTcp({ backend, address, rank, size, timeoutMs: 60_000 });
  try {
    const count = 1 << 20;
    const buffer = backend.createBuffer({ dtype: 'f32', elementCount: 16 << 20, label: 'allreduce' });
    backend.upload(buffer, new Float32Array(count).fill(rank + 1));
    await communicator.allReduceDeviceSum(buffer, count);
    const sum = (await backend.download(buffer, { elementCount: count })) as Float32Array;
    const expected = (size * (size + 1)) / 2;
    const wrong = sum.findIndex((value) => value !== expected);
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      await backend.synchronize();
      const started = performance.now();
      await communicator.allReduceDeviceSum(buffer, 16 << 20);
      await backend.synchronize();
      times.push(performance.now() - started);
    }
    const ms = times.slice(1).sort((a, b) => a - b)[2]!;
    const bytes = (16 << 20) * 4;
    process.stdout.write(
      `${JSON.stringify({ rank, ok: wrong < 0, firstWrong: wrong, expected, allReduce64MiBMs: ms, busBandwidthGBs: (((2 * (size - 1)) / size) * (bytes / (ms / 1e3))) / 1e9 })}\n`,
    );
  } finally {
    communicator.dispose();
    backend.dispose();
  }
}

async function parent(size: number): Promise<void> {
  const probe = probeCuda();
  if (!probe.available) throw new Error(probe.reason);
  const port = await new Promise<number>((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
  const address = `127.0.0.1:${port}`;
  const script = fileURLToPath(import.meta.url);
  const results = await Promise.all(
    Array.from(
      { length: size },
      (_, rank) =>
        new Promise<{ rank: number; code: number | null; stdout: string; stderr: string }>((resolve) => {
          const proc = spawn(process.execPath, [script, 'child', String(rank), String(size), address]);
          let stdout = '';
          let stderr = '';
          proc.stdout.on('data', (chunk) => {
            stdout += chunk;
          });
          proc.stderr.on('data', (chunk) => {
            stderr += chunk;
          });
          proc.on('close', (code) => resolve({ rank, code, stdout, stderr }));
        }),
    ),
  );
  const ranks = results.map((result) => {
    try {
      return { ...JSON.parse(result.stdout.trim()), code: result.code };
    } catch {
      return { rank: result.rank, ok: false, code: result.code, error: result.stderr.slice(-2000) };
    }
  });
  const report = {
    check: 'nccl-multiprocess',
    gpus: probe.devices.slice(0, size).map((d) => d.name),
    size,
    address,
    ranks,
  };
  console.log(JSON.stringify(report, null, 2));
  writeFileSync(`${process.env.OUT ?? '.'}/nccl-multiprocess.json`, `${JSON.stringify(report, null, 2)}\n`);
  if (!ranks.every((rank) => rank.ok && rank.code === 0)) process.exitCode = 1;
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'child') await child(Number(rest[0]), Number(rest[1]), rest[2]!);
else await parent(Number(mode ?? 2));
