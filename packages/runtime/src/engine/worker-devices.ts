import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BackendError, type DType, FairkvError, type ModelConfig, ValidationError } from '@fairkv/core';
import { abortSharedCommunicators, createSharedCommunicatorState } from './communicator.js';
import type { DeviceHandle } from './device-handle.js';
import type { DeviceShard } from './device-shards.js';
import type { HeadObservation, OnLayerObserved } from './prefill-observation.js';
import { type AbortWorkerDevices, isWorkerBackendModule, type WorkerBackendModule } from './worker-backend.js';
import {
  type DeviceWorkerCall,
  type DeviceWorkerConnect,
  type DeviceWorkerInit,
  type DeviceWorkerReply,
  WORKER_CONNECTED_ID,
  WORKER_PREPARED_ID,
  type WorkerWeightSource,
} from './worker-protocol.js';

export type { WorkerWeightSource } from './worker-protocol.js';

/** Options of {@link createWorkerDevices}. */
export interface WorkerDevicesOptions {
  /** Weights: slices of a model file (each worker reads only its own), or dummy weights from a seed. */
  weights: WorkerWeightSource;
  config: ModelConfig;
  /** One per device, from `deviceShardsFromPlan`. */
  shards: DeviceShard[];
  /** `cpu`, or a module each worker imports to create its backend (e.g. `cudaWorkerBackend()`). */
  backend: 'cpu' | WorkerBackendModule;
  dtype: DType;
  /** Tokens per KV block. */
  blockSize: number;
  /** KV pool size of each device, in blocks. */
  kvBlockCount: (shard: DeviceShard) => number;
  /** Fill every KV pool with this value at creation (benchmarks that admit without a prefill). */
  kvFill?: number;
  maxPositions: number;
  /** Decode steps as graph steps where the backend has them (default true). */
  graphSteps?: boolean;
  /** The device worker script; default: `device-worker.js` beside this module (the built package). */
  workerScript?: string | URL;
  onProgress?: (event: { device: number; deviceCount: number; phase: 'slicing' | 'ready' }) => void;
}

/** The ESM entry of `tsx/esm/api`, found from `from` (its package.json `exports`), as a file URL. */
function tsxEsmApiUrl(from: string): string {
  const packageJson = createRequire(from).resolve('tsx/package.json');
  const manifest = JSON.parse(readFileSync(packageJson, 'utf8')) as {
    exports: Record<string, { import: { default: string } }>;
  };
  return pathToFileURL(join(dirname(packageJson), manifest.exports['./esm/api']!.import.default)).href;
}

/**
 * Where the device worker script is: the built `device-worker.js` beside this module (the published
 * package), else — when running from TypeScript sources in this repository (vitest, tsx) — the
 * `device-worker.ts` source, run through tsx's loader.
 */
export function defaultWorkerScript(): { script: URL | string; eval: boolean } {
  const here = import.meta.url;
  const js = new URL('./device-worker.js', here);
  if (existsSync(fileURLToPath(js))) return { script: js, eval: false };
  const source = new URL('./device-worker.ts', here).href;
  // resolve tsx from this package, not from the caller's working directory
  const tsx = tsxEsmApiUrl(here);
  const bootstrap = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(source)}); });`;
  return { script: bootstrap, eval: true };
}

class RemoteError extends FairkvError {}

function toError(error: { name: string; message: string; code?: string }, device: number): Error {
  const message = `device ${device}: ${error.message}`;
  if (error.code?.startsWith('FAIRKV_')) {
    const remote = new RemoteError(error.code as FairkvError['code'], message);
    remote.name = error.name;
    return remote;
  }
  const plain = new Error(message);
  plain.name = error.name;
  return plain;
}

/**
 * Starts one worker thread per device and returns the handles the coordinator drives. Each worker
 * loads only its weight slices and creates its own backend; they all-reduce through one
 * SharedArrayBuffer, or through the communicators their backend module creates (NCCL on CUDA). Each
 * handle's `abortCollectives` releases the group's collectives (the barrier, and the module's
 * `abortWorkerDevices` where it exports one) once a device failed.
 * @throws BackendError when a worker fails to start (every worker is then stopped).
 */
export async function createWorkerDevices(options: WorkerDevicesOptions): Promise<DeviceHandle[]> {
  const { shards, config } = options;
  if (options.backend !== 'cpu' && !isWorkerBackendModule(options.backend)) {
    throw new ValidationError(
      `backend: expected "cpu" or a backend module { module, options } for worker devices, got ${JSON.stringify(options.backend)}`,
      [{ path: '$.backend', message: 'expected "cpu" or { module: string, options? }' }],
    );
  }
  const communicator = createSharedCommunicatorState(shards.length, Math.max(1 << 14, config.hiddenSize * 64));
  const backendModule = options.backend === 'cpu' ? undefined : options.backend;
  let aborting: Promise<void> | undefined;
  // one abort for the whole group: the shared-memory barrier and the backend module's collectives
  const abortCollectives = (): Promise<void> => {
    aborting ??= (async () => {
      abortSharedCommunicators(communicator);
      if (!backendModule) return;
      const loaded = (await import(backendModule.module)) as { abortWorkerDevices?: AbortWorkerDevices };
      await loaded.abortWorkerDevices?.(backendModule.options);
    })();
    return aborting;
  };
  const { script, eval: isEval } = options.workerScript
    ? { script: options.workerScript, eval: false }
    : defaultWorkerScript();
  const handles = shards.map((shard) => {
    const worker = new Worker(script, { eval: isEval });
    const pending = new Map<
      number,
      { resolve: (value: unknown) => void; reject: (error: Error) => void; onLayer?: OnLayerObserved }
    >();
    let nextId = 0;
    let failed: Error | undefined;
    // the two start-up replies (prepared, connected) have negative ids
    const startup = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
    const awaitStartup = (id: number) =>
      failed
        ? Promise.reject(failed)
        : new Promise((resolve, reject) => {
            startup.set(id, { resolve, reject });
          });
    const prepared = awaitStartup(WORKER_PREPARED_ID);
    worker.on('message', (reply: DeviceWorkerReply) => {
      if ('layer' in reply) {
        pending.get(reply.id)?.onLayer?.(reply.layer, reply.observation as HeadObservation[]);
        return;
      }
      const waiters = reply.id < 0 ? startup : pending;
      const waiter = waiters.get(reply.id);
      waiters.delete(reply.id);
      if (!waiter) return;
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(toError(reply.error, shard.device));
    });
    const die = (error: Error) => {
      failed = new BackendError(`device ${shard.device} worker stopped: ${error.message}`, { cause: error });
      for (const waiter of [...startup.values(), ...pending.values()]) waiter.reject(failed);
      startup.clear();
      pending.clear();
    };
    worker.on('error', die);
    worker.on('exit', (code) => {
      if (pending.size > 0 || startup.size > 0) die(new Error(`exit code ${code}`));
    });
    const init: DeviceWorkerInit = {
      kind: 'init',
      weights: options.weights,
      config,
      shard,
      deviceCount: shards.length,
      backend: options.backend,
      dtype: options.dtype,
      kvBlockCount: options.kvBlockCount(shard),
      kvBlockSize: options.blockSize,
      ...(options.kvFill !== undefined ? { kvFill: options.kvFill } : {}),
      ...(options.graphSteps !== undefined ? { graphSteps: options.graphSteps } : {}),
      maxPositions: options.maxPositions,
      communicator,
    };
    options.onProgress?.({ device: shard.device, deviceCount: shards.length, phase: 'slicing' });
    worker.postMessage(init);
    const call = (method: DeviceWorkerCall['method'], args: unknown[], onLayer?: OnLayerObserved): Promise<never> => {
      if (failed) return Promise.reject(failed);
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject, ...(onLayer ? { onLayer } : {}) });
        worker.postMessage({ id, method, args } satisfies DeviceWorkerCall);
      });
    };
    const invoke = (method: DeviceWorkerCall['method'], ...args: unknown[]): Promise<never> => call(method, args);
    const handle: DeviceHandle = {
      device: shard.device,
      // the callback stays here; the worker sends each layer's observation as a message
      prefill: (requestId, tokens, needs, onLayer) => call('prefill', [requestId, tokens, needs], onLayer),
      commit: (...args) => invoke('commit', ...args),
      admitSynthetic: (...args) => invoke('admitSynthetic', ...args),
      discard: (...args) => invoke('discard', ...args),
      decode: (...args) => invoke('decode', ...args),
      sampleLogits: (...args) => invoke('sampleLogits', ...args),
      release: (...args) => invoke('release', ...args),
      stats: () => invoke('stats'),
      kvBlocks: () => invoke('kvBlocks'),
      startProfile: () => invoke('startProfile'),
      stopProfile: () => invoke('stopProfile'),
      abortCollectives,
      dispose: async () => {
        try {
          await invoke('dispose');
        } finally {
          await worker.terminate();
        }
      },
    };
    const connect = async () => {
      const connected = awaitStartup(WORKER_CONNECTED_ID);
      worker.postMessage({ kind: 'connect' } satisfies DeviceWorkerConnect);
      await connected;
      options.onProgress?.({ device: shard.device, deviceCount: shards.length, phase: 'ready' });
    };
    return { handle, prepared, connect, worker };
  });
  try {
    // every device loads its weights and creates its backend first; only then do they connect their
    // communicators (which may wait for one another), so one failing device cannot leave others waiting
    await Promise.all(handles.map((entry) => entry.prepared));
    await Promise.all(handles.map((entry) => entry.connect()));
  } catch (error) {
    await Promise.all(handles.map((entry) => entry.worker.terminate()));
    throw error;
  }
  return handles.map((entry) => entry.handle);
}
