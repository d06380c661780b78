/**
 * Issue 8 §3 on a GPU machine: separate processes form one NCCL group through the TCP rendezvous
 * (`joinNcclRankOverTcp`: rank 0 serves the unique id, then `ncclCommInitRank`). The parent spawns one
 * process per GPU; each fills a buffer with rank + 1, all-reduces it on the GPU, and checks every
 * element equals 1 + 2 + ... + size; then times a 64 MiB all-reduce. Writes $OUT/nccl-multiprocess.json.
 * With `lost`, the last rank's process exits right after the first all-reduce, without leaving the group,
 * and every other rank all-reduces again: the rendezvous's watch must abort its communicator, so that it
 * gets an error within seconds instead of waiting forever. Writes $OUT/nccl-multiprocess-lost.json.
 * With `abort`, the last rank's process lives on and calls `communicator.abort(reason)` instead (its device
 * failed, say): the others must get an error naming it, and its own next all-reduce must throw too.
 * Writes $OUT/nccl-multiprocess-abort.json.
 * With `init-lost` (`init-abort`), the last rank's process exits (aborts the group, as a failed
 * ncclCommInitRank would) right after the rendezvous, while the others wait in their ncclCommInitRank: their
 * joins must fail within seconds naming it, and their processes exit. Writes $OUT/nccl-multiprocess-<mode>.json.
 *   node .device/nccl-multiprocess.mjs [size] [lost|abort|init-lost|init-abort]
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createCudaBackend, joinNcclRankOverTcp, probeCuda, rendezvousNcclGroup } from '../../src/index.js';

type Failure = 'lost' | 'abort' | 'init-lost' | 'init-abort' | undefined;

async function failingInit(rank: number, size: number, address: string, failure: Failure): Promise<void> {
  if (rank === size - 1) {
    // takes the id, then never joins: gone, or alive and telling the others its init failed
    const group = await rendezvousNcclGroup({ address, rank, size, timeoutMs: 60_000 });
    if (failure === 'init-lost') process.exit(3);
    group.abort(`rank ${rank}'s ncclCommInitRank failed (simulated by the check)`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    process.stdout.write(`${JSON.stringify({ rank, ok: true, aborted: true })}\n`);
    return;
  }
  const backend = createCudaBackend({ device: rank });
  const started = performance.now();
  let outcome = 'joined';
  try {
    (await joinNcclRankOverTcp({ backend, address, rank, size, timeoutMs: 60_000 })).dispose();
  } catch (error) {
    outcome = (error as Error).message;
  }
  const seconds = (performance.now() - started) / 1000;
  const ok = /stopped waiting for the other ranks/.test(outcome) && new RegExp(`rank ${size - 1}`).test(outcome);
  process.stdout.write(`${JSON.stringify({ rank, ok: ok && seconds < 20, seconds, outcome })}\n`);
  backend.dispose();
  // the process must still exit: the abandoned init thread does not keep it alive
}

async function child(rank: number, size: number, address: string, failure: Failure): Promise<void> {
  if (failure === 'init-lost' || failure === 'init-abort') return failingInit(rank, size, address, failure);
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
    if (failure) {
      if (rank === size - 1 && failure === 'lost') process.exit(3); // gone, without leaving the group
      if (rank === size - 1) {
        // alive, but done with the group: the others must hear of it from the rendezvous
        await communicator.abort!(`rank ${rank}'s device failed (injected by the check)`);
        let outcome = 'no error';
        try {
          await communicator.allReduceDeviceSum(buffer, count);
          await backend.download(buffer, { elementCount: 1 });
        } catch (error) {
          outcome = (error as Error).message;
        }
        process.stdout.write(
          `${JSON.stringify({ rank, ok: wrong < 0 && /aborted/.test(outcome), aborted: true, outcome })}\n`,
        );
        return;
      }
      // collectives the last rank never joins. NCCL leaves their outcome undefined (one may wait on the
      // device, or end with garbage once that rank's communicator is gone), but once the watch aborted this
      // rank its all-reduces throw: within 20 s, or the check fails
      const started = performance.now();
      let outcome = 'no error';
      let collectives = 0;
      while (performance.now() - started < 20_000) {
        try {
          collectives++;
          await communicator.allReduceDeviceSum(buffer, count);
          await backend.download(buffer, { elementCount: 1 });
        } catch (error) {
          outcome = (error as Error).message;
          break;
        }
      }
      const seconds = (performance.now() - started) / 1000;
      const named = failure === 'lost' || /rank \d+ aborted the group/.test(outcome);
      process.stdout.write(
        `${JSON.stringify({ rank, ok: wrong < 0 && /aborted/.test(outcome) && named && seconds < 20, seconds, collectives, outcome })}\n`,
      );
      return;
    }
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

async function parent(size: number, failure: Failure): Promise<void> {
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
        new Promise<{
          rank: number;
          code: number | null;
          signal: NodeJS.Signals | null;
          stdout: string;
          stderr: string;
        }>((resolve) => {
          const args = [script, 'child', String(rank), String(size), address, ...(failure ? [failure] : [])];
          const proc = spawn(process.execPath, args);
          // a rank still waiting after a minute is the hang this check is about
          const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
          proc.on('exit', () => clearTimeout(timer));
          let stdout = '';
          let stderr = '';
          proc.stdout.on('data', (chunk) => {
            stdout += chunk;
          });
          proc.stderr.on('data', (chunk) => {
            stderr += chunk;
          });
          proc.on('close', (code, signal) => resolve({ rank, code, signal, stdout, stderr }));
        }),
    ),
  );
  const ranks = results.map((result) => {
    if ((failure === 'lost' || failure === 'init-lost') && result.rank === size - 1)
      return { rank: result.rank, ok: result.code === 3, code: result.code, exited: true };
    try {
      const report = { ...JSON.parse(result.stdout.trim()), code: result.code };
      // a process that reported, then died by a signal (at exit): what it printed last
      return result.signal ? { ...report, signal: result.signal, stderr: result.stderr.slice(-1500) } : report;
    } catch {
      return { rank: result.rank, ok: false, code: result.code, error: result.stderr.slice(-2000) };
    }
  });
  const report = {
    check: failure ? `nccl-multiprocess-${failure}` : 'nccl-multiprocess',
    gpus: probe.devices.slice(0, size).map((d) => d.name),
    size,
    address,
    ranks,
  };
  console.log(JSON.stringify(report, null, 2));
  const file = failure ? `nccl-multiprocess-${failure}.json` : 'nccl-multiprocess.json';
  writeFileSync(`${process.env.OUT ?? '.'}/${file}`, `${JSON.stringify(report, null, 2)}\n`);
  // (the rank that exits on purpose in `lost` reports ok with its exit code 3)
  if (!ranks.every((rank) => rank.ok && (rank.code === 0 || rank.exited))) process.exitCode = 1;
}

const [mode, ...rest] = process.argv.slice(2);
const failures = ['lost', 'abort', 'init-lost', 'init-abort'] as const;
const failureOf = (word: string | undefined): Failure => failures.find((failure) => failure === word);
if (mode === 'child') await child(Number(rest[0]), Number(rest[1]), rest[2]!, failureOf(rest[3]));
else await parent(Number(mode ?? 2), failureOf(rest[0]));
