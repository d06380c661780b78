import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BackendError, CancelledError } from '@fairkv/core';
import type { LP, Options, Result } from 'glpk.js/node';

/** One glpk.js solve: a model and its options (tmlim in seconds, mipgap, msglev). */
export interface GlpkJob {
  model: LP;
  options: Options;
}

/** Runs glpk.js solves, in a worker thread or in the calling thread. */
export interface GlpkRunner {
  /** Where solves run. */
  readonly mode: 'worker' | 'in-thread';
  /** Why solves run in the calling thread, when a worker was asked for but could not start. */
  readonly fallbackReason: string | undefined;
  solve(jobs: GlpkJob[]): Promise<Result[]>;
  close(): Promise<void>;
}

/**
 * The worker's whole program, evaluated from a string (`eval: true`): the same code runs from the
 * TypeScript sources (vitest, tsx) and from the built ESM and CJS files, with no worker file to find.
 * It imports glpk.js from the absolute URL the main thread resolved. Only dynamic `import()` is used:
 * an eval worker inherits the parent's `--input-type`, so it may run as CommonJS or as an ES module.
 */
const WORKER_SOURCE = `
import('node:worker_threads')
  .then(async ({ parentPort, workerData }) => {
    const { default: GLPK } = await import(workerData.glpkUrl);
    const glpk = await GLPK();
    parentPort.on('message', (jobs) => {
      try {
        parentPort.postMessage({ results: jobs.map((job) => glpk.solve(job.model, job.options)) });
      } catch (error) {
        parentPort.postMessage({ error: String((error && error.stack) || error) });
      }
    });
    parentPort.postMessage({ ready: glpk.version });
  })
  .catch(async (error) => {
    const { parentPort } = await import('node:worker_threads');
    parentPort.postMessage({ error: String((error && error.stack) || error) });
  });
`;

/** Absolute file URL of glpk.js's Node build (`glpk.js/node`), resolved from this package. */
export function glpkModuleUrl(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve('glpk.js/node')).href;
}

type Glpk = { solve(model: LP, options?: Options): Result; version: string };

async function loadGlpkHere(): Promise<Glpk> {
  // A computed specifier keeps bundlers from turning this into require() in the CJS build (glpk.js is ESM only).
  const module = (await import(/* @vite-ignore */ glpkModuleUrl())) as { default: () => Promise<Glpk> };
  return module.default();
}

function inThreadRunner(glpk: Glpk, fallbackReason?: string): GlpkRunner {
  return {
    mode: 'in-thread',
    fallbackReason,
    async solve(jobs) {
      return jobs.map((job) => glpk.solve(job.model, job.options));
    },
    async close() {},
  };
}

function startWorker(glpkUrl: string, signal?: AbortSignal): Promise<GlpkRunner> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { glpkUrl } });
    worker.unref();
    let pending: { resolve: (results: Result[]) => void; reject: (error: Error) => void } | null = null;
    let ready = false;
    const fail = (error: Error) => {
      if (!ready) reject(error);
      pending?.reject(error);
      pending = null;
    };
    const onAbort = () => {
      fail(new CancelledError('ILP solve cancelled'));
      void worker.terminate();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('error', (error) => fail(new BackendError(`glpk.js worker failed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => fail(new BackendError(`glpk.js worker exited with code ${code}`)));
    worker.on('message', (message: { ready?: string; results?: Result[]; error?: string }) => {
      if (message.error !== undefined) return fail(new BackendError(`glpk.js worker: ${message.error}`));
      if (message.ready !== undefined) {
        ready = true;
        resolve({
          mode: 'worker',
          fallbackReason: undefined,
          solve(jobs) {
            if (signal?.aborted) return Promise.reject(new CancelledError('ILP solve cancelled'));
            return new Promise((resolveJobs, rejectJobs) => {
              pending = { resolve: resolveJobs, reject: rejectJobs };
              worker.ref();
              worker.postMessage(jobs);
            });
          },
          async close() {
            signal?.removeEventListener('abort', onAbort);
            worker.removeAllListeners('exit');
            await worker.terminate();
          },
        });
        return;
      }
      worker.unref();
      const done = pending;
      pending = null;
      done?.resolve(message.results ?? []);
    });
  });
}

/**
 * Creates a glpk.js runner. With `useWorker`, solves run in a worker thread (glpk.js's `solve` is
 * synchronous: TOOLCHAIN.md) so callers (a server, a progress bar) do not block, and `signal`
 * terminates a running solve. When the worker cannot start, solves fall back to the calling thread
 * and `fallbackReason` says why. `workerGlpkUrl` overrides where the worker imports glpk.js from (the
 * package's own `glpk.js/node` by default), e.g. for a bundled deployment.
 */
export async function createGlpkRunner(
  useWorker: boolean,
  signal?: AbortSignal,
  workerGlpkUrl = glpkModuleUrl(),
): Promise<GlpkRunner> {
  if (!useWorker) return inThreadRunner(await loadGlpkHere());
  try {
    return await startWorker(workerGlpkUrl, signal);
  } catch (error) {
    if (error instanceof CancelledError) throw error;
    const reason = `worker thread unavailable (${(error as Error).message}); glpk.js ran in the calling thread`;
    return inThreadRunner(await loadGlpkHere(), reason);
  }
}
