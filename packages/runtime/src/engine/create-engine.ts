import type { CompressionPolicy } from '@fairkv/compress';
import { BackendError, type DType, type Plan, ValidationError } from '@fairkv/core';
import { type Backend, createCpuBackend } from '@fairkv/kernels';
import type { LoadedModel } from '../model/loaded-model.js';
import {
  abortLocalCommunicators,
  type Communicator,
  createLocalCommunicators,
  SoloCommunicator,
} from './communicator.js';
import { DeviceExecutor } from './device-executor.js';
import { type DeviceHandle, inlineDeviceHandle } from './device-handle.js';
import { type DeviceShard, deviceShardsFromPlan, singleDevicePlan } from './device-shards.js';
import { InferenceEngine } from './inference-engine.js';
import { sliceShardWeights } from './shard-weights.js';
import { isWorkerBackendModule, type WorkerBackendModule } from './worker-backend.js';
import { createWorkerDevices } from './worker-devices.js';

/** Backends the runtime can create by name (in this thread or in device workers). */
export type BackendName = 'cpu';

/** Options of {@link createInferenceEngine}. */
export interface CreateEngineOptions {
  /** The loaded model (weights are sliced per device from it). */
  model: LoadedModel;
  /** Placement plan; default: every head on one device. */
  plan?: Plan;
  /**
   * Backend of every device: a name; a factory called with the device index (in-thread execution
   * only; e.g. one CUDA backend per GPU driven from this thread); or a module each device worker
   * imports to create its own backend and communicator (worker execution only; e.g.
   * `cudaWorkerBackend()` of `@fairkv/kernels-cuda`: a thread and an NCCL rank per GPU). Default `cpu`.
   */
  backend?: BackendName | DeviceBackendFactory | WorkerBackendModule;
  /**
   * Communicators of the devices, one per device in rank order (in-thread execution only), e.g. NCCL
   * over CUDA devices. Default: in-memory all-reduce between the in-thread devices.
   */
  communicators?: Communicator[];
  /**
   * `workers` runs each device in its own worker thread with its own backend and only its weights,
   * all-reducing through shared memory; `inline` runs all devices in this thread (same results, no
   * parallelism; for tests and debugging). Default: `workers` for several devices, else `inline`.
   */
  execution?: 'inline' | 'workers';
  /** Compression policy applied after prefill (default: keep everything). */
  policy?: CompressionPolicy;
  /** Dtype of weights and KV on the devices (default f32). */
  dtype?: DType;
  /** KV tokens each device's pool holds (default: enough for `maxBatch` full contexts of every hosted head). */
  kvTokensPerDevice?: number;
  /** Tokens per KV block (default 16). */
  kvBlockSize?: number;
  /** Most requests decoded together (default 8). */
  maxBatch?: number;
  /** Context positions (default: the model's max context). */
  maxPositions?: number;
  /**
   * Decode steps as graph steps where the backend has them (`Backend.beginGraphStep`: the CUDA backend
   * replays a step as CUDA graphs) and the devices' all-reduces can join them (one device, or NCCL ranks
   * in device workers). Default true; the tokens are the same either way.
   */
  graphSteps?: boolean;
  /** Called as each device finishes loading its shard. */
  onProgress?: (event: { device: number; deviceCount: number; phase: 'slicing' | 'ready' }) => void;
}

/** Creates the backend of device `device`. */
export type DeviceBackendFactory = (device: number) => Backend | Promise<Backend>;

function resolveFactory(backend: BackendName | DeviceBackendFactory): DeviceBackendFactory {
  if (typeof backend === 'function') return backend;
  if (backend === 'cpu') return () => createCpuBackend();
  throw new BackendError(`backend: unknown backend "${String(backend)}" (expected cpu, or a factory function)`);
}

/**
 * Shards a loaded model over the devices of a plan and returns the coordinator.
 * @throws ValidationError for a plan that does not fit the model or bad options.
 */
export async function createInferenceEngine(options: CreateEngineOptions): Promise<InferenceEngine> {
  const { model } = options;
  const config = model.config;
  const plan = options.plan ?? singleDevicePlan(config);
  const { shards } = deviceShardsFromPlan(plan, config);
  const maxPositions = options.maxPositions ?? config.maxContext;
  const maxBatch = options.maxBatch ?? 8;
  const blockSize = options.kvBlockSize ?? 16;
  if (!Number.isInteger(maxPositions) || maxPositions < 2) {
    throw new ValidationError(`maxPositions: expected an integer >= 2, got ${maxPositions}`, [
      { path: '$.maxPositions', message: 'expected an integer >= 2' },
    ]);
  }
  const blocksFor = (shard: DeviceShard) => {
    const shardHeads = shard.layers.reduce((sum, heads) => sum + heads.length, 0);
    const tokens = options.kvTokensPerDevice ?? maxBatch * (maxPositions + blockSize) * Math.max(shardHeads, 1);
    return Math.max(1, Math.ceil(tokens / blockSize));
  };
  const execution = options.execution ?? (plan.deviceCount > 1 ? 'workers' : 'inline');
  const backend = options.backend ?? 'cpu';
  const dtype = options.dtype ?? 'f32';
  let devices: DeviceHandle[];
  if (execution === 'workers') {
    if (typeof backend === 'function') {
      throw new ValidationError(
        'backend: worker execution needs a backend name (a factory function cannot cross threads)',
        [{ path: '$.backend', message: 'expected a backend name' }],
      );
    }
    devices = await createWorkerDevices({
      weights: { kind: 'file', path: model.path },
      config,
      shards,
      backend,
      dtype,
      blockSize,
      kvBlockCount: blocksFor,
      maxPositions,
      ...(options.graphSteps !== undefined ? { graphSteps: options.graphSteps } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } else {
    if (isWorkerBackendModule(backend)) {
      throw new ValidationError(
        `backend: the module ${backend.module} creates devices in worker threads; use execution: 'workers'`,
        [{ path: '$.backend', message: "a backend module needs execution: 'workers'" }],
      );
    }
    const factory = resolveFactory(backend);
    const communicators =
      options.communicators ??
      (plan.deviceCount === 1 ? [new SoloCommunicator()] : createLocalCommunicators(plan.deviceCount));
    if (communicators.length !== plan.deviceCount) {
      throw new ValidationError(
        `communicators: expected ${plan.deviceCount} (one per device), got ${communicators.length}`,
        [{ path: '$.communicators', message: `expected ${plan.deviceCount}` }],
      );
    }
    devices = [];
    for (const shard of shards) {
      options.onProgress?.({ device: shard.device, deviceCount: shards.length, phase: 'slicing' });
      const weights = await sliceShardWeights(model.weights, config, shard, { dtype });
      const created: Backend = await factory(shard.device);
      const executor = new DeviceExecutor({
        backend: created,
        config,
        shard,
        weights,
        communicator: communicators[shard.device]!,
        dtype,
        kvBlockCount: blocksFor(shard),
        kvBlockSize: blockSize,
        maxPositions,
        ...(options.graphSteps !== undefined ? { graphSteps: options.graphSteps } : {}),
      });
      const handle = inlineDeviceHandle(executor);
      // in-memory all-reduces waiting for a device that failed are released (the group's abort); given
      // communicators have no abort the engine knows of
      devices.push(
        options.communicators
          ? handle
          : { ...handle, abortCollectives: () => void abortLocalCommunicators(communicators) },
      );
      options.onProgress?.({ device: shard.device, deviceCount: shards.length, phase: 'ready' });
    }
  }
  return new InferenceEngine({
    config,
    plan,
    devices,
    tokenizer: model.tokenizer,
    maxBatch,
    maxPositions,
    ...(options.policy ? { policy: options.policy } : {}),
  });
}
