import { BackendError } from '@fairkv/core';
import { f16DecodeTable } from '../half-precision.js';
import type { CpuParallelRunner, ParallelFunctionName } from './cpu-kernel.js';
import { matmulRange } from './kernels/matmul.js';
import { attendPairs } from './kernels/ragged-decode-attention.js';

/** The self-contained functions worker threads can run, by name. */
const WORKER_FUNCTIONS = { matmulRange, attendPairs } as const satisfies Record<
  ParallelFunctionName,
  (...args: never[]) => void
>;

/** Minimal shape of `node:worker_threads`' Worker that the pool uses. */
interface WorkerLike {
  postMessage(message: unknown): void;
  unref(): void;
  terminate(): Promise<number>;
}

type WorkerConstructor = new (source: string, options: { eval: true }) => WorkerLike;

/** Loads `node:worker_threads` without a static import, so browser bundles of this package never see it. */
function loadWorkerConstructor(): WorkerConstructor {
  const getBuiltin = (process as unknown as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  if (typeof getBuiltin !== 'function') {
    throw new BackendError('cpu backend threads need process.getBuiltinModule (Node >= 20.16)');
  }
  return (getBuiltin('node:worker_threads') as { Worker: WorkerConstructor }).Worker;
}

/** Source of each worker: the kernel functions (via their own source text) and a message loop. */
function workerSource(): string {
  const functions = Object.entries(WORKER_FUNCTIONS)
    .map(([name, fn]) => `${JSON.stringify(name)}: ${fn.toString()}`)
    .join(',\n');
  return `
const { parentPort } = require('node:worker_threads');
const functions = {${functions}};
parentPort.on('message', ({ name, args, signal }) => {
  try { functions[name](...args); } catch (error) { Atomics.store(signal, 1, 1); }
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
});`;
}

/**
 * Intra-backend parallelism of the CPU backend (off by default: the runtime already runs one CPU
 * backend per device worker). `run` executes part 0 on the calling thread and the other parts on
 * worker threads over shared memory, and blocks (Atomics.wait) until all are done, so kernels stay
 * synchronous and the queue stays in order. Needs every buffer to live in a SharedArrayBuffer.
 */
export class CpuThreadPool implements CpuParallelRunner {
  /** Threads a call can use, the calling thread included. */
  readonly size: number;
  /** The f16 decode table in shared memory (sent to workers without copying). */
  readonly f16Table: Float32Array;
  readonly #workers: WorkerLike[];
  readonly #signal = new Int32Array(new SharedArrayBuffer(8));

  constructor(threads: number) {
    const Worker = loadWorkerConstructor();
    this.size = threads;
    const source = workerSource();
    this.#workers = Array.from({ length: threads - 1 }, () => {
      const worker = new Worker(source, { eval: true });
      worker.unref();
      return worker;
    });
    this.f16Table = new Float32Array(new SharedArrayBuffer(65536 * 4));
    this.f16Table.set(f16DecodeTable());
  }

  /** Runs `name(...parts[i])` for every part, part 0 here and the rest on workers; returns when all finish. */
  run(name: ParallelFunctionName, parts: readonly unknown[][]): void {
    const remote = parts.length - 1;
    if (remote > this.#workers.length) throw new BackendError(`${parts.length} parts for ${this.size} threads`);
    Atomics.store(this.#signal, 0, 0);
    Atomics.store(this.#signal, 1, 0);
    for (let i = 1; i < parts.length; i++)
      this.#workers[i - 1]!.postMessage({ name, args: parts[i], signal: this.#signal });
    if (parts.length > 0) (WORKER_FUNCTIONS[name] as (...args: unknown[]) => void)(...parts[0]!);
    for (let finished = Atomics.load(this.#signal, 0); finished < remote; finished = Atomics.load(this.#signal, 0)) {
      Atomics.wait(this.#signal, 0, finished);
    }
    if (Atomics.load(this.#signal, 1) !== 0) throw new BackendError(`cpu worker thread failed in ${name}`);
  }

  /** Stops the workers. */
  terminate(): void {
    for (const worker of this.#workers) void worker.terminate();
  }
}
