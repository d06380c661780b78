/**
 * Entry point of a device worker thread: loads only this device's weight slices from the model file
 * (or makes dummy weights), creates its own backend (the CPU backend, or what a backend module such
 * as `@fairkv/kernels-cuda`'s worker device creates), connects its communicator once every device got
 * that far (`init`, then `connect`), and serves the coordinator's calls in order.
 * All-reduces go through the module's communicator (e.g. an NCCL rank) or the shared-memory one, so
 * the workers of one engine run each layer in lockstep.
 */
import { parentPort } from 'node:worker_threads';
import { createCpuBackend } from '@fairkv/kernels';
import { loadModel } from '../model/load-model.js';
import { type Communicator, SharedMemoryCommunicator } from './communicator.js';
import { DeviceExecutor } from './device-executor.js';
import { type DeviceHandle, inlineDeviceHandle } from './device-handle.js';
import { dummyShardWeights } from './dummy-weights.js';
import { type ShardWeights, sliceShardWeights } from './shard-weights.js';
import type { CreateWorkerDevice, WorkerDevice } from './worker-backend.js';
import {
  type DeviceWorkerCall,
  type DeviceWorkerConnect,
  type DeviceWorkerInit,
  type DeviceWorkerReply,
  WORKER_CONNECTED_ID,
  WORKER_PREPARED_ID,
} from './worker-protocol.js';

if (!parentPort) throw new Error('device-worker must run in a worker thread');
const port = parentPort;

function replyError(id: number, error: unknown): DeviceWorkerReply {
  const e = error as { name?: string; message?: string; code?: string; stack?: string };
  return {
    id,
    ok: false,
    error: {
      name: e.name ?? 'Error',
      message: e.message ?? String(error),
      ...(e.code ? { code: e.code } : {}),
      ...(e.stack ? { stack: e.stack } : {}),
    },
  };
}

let handle: DeviceHandle | undefined;
let queue: Promise<void> = Promise.resolve();

async function loadWeights(message: DeviceWorkerInit): Promise<ShardWeights> {
  if (message.weights.kind === 'dummy') {
    return dummyShardWeights(message.config, message.shard, message.weights.seed, message.dtype);
  }
  const model = await loadModel(message.weights.path);
  try {
    return await sliceShardWeights(model.weights, message.config, message.shard, { dtype: message.dtype });
  } finally {
    model.close();
  }
}

async function createDevice(message: DeviceWorkerInit): Promise<WorkerDevice> {
  if (message.backend === 'cpu') return { backend: createCpuBackend() };
  const { module, options } = message.backend;
  const loaded = (await import(module)) as { createWorkerDevice?: CreateWorkerDevice };
  if (typeof loaded.createWorkerDevice !== 'function') {
    throw new TypeError(`backend module ${module} does not export a createWorkerDevice function`);
  }
  return loaded.createWorkerDevice({ device: message.shard.device, deviceCount: message.deviceCount, options });
}

/** Between the two phases of start-up: what `init` prepared and `connect` completes. */
let prepared: { message: DeviceWorkerInit; weights: ShardWeights; device: WorkerDevice } | undefined;
let disposeCommunicator: (() => void) | undefined;

/**
 * Phase 1: loads the weights and creates the backend. Nothing here waits for the other devices, so a
 * device that fails here fails alone and the coordinator can stop every worker.
 */
async function init(message: DeviceWorkerInit): Promise<void> {
  const weights = await loadWeights(message);
  prepared = { message, weights, device: await createDevice(message) };
}

/**
 * Phase 2, once every device prepared: the communicator (a backend module's `connect` may block until
 * every device connected, as NCCL's ncclCommInitRank does), then the executor uploads the weights.
 */
async function connect(): Promise<void> {
  if (!prepared) throw new Error('device worker not prepared');
  const { message, weights, device } = prepared;
  prepared = undefined;
  let communicator: Communicator | undefined;
  try {
    communicator =
      (await device.connect?.()) ??
      device.communicator ??
      new SharedMemoryCommunicator(message.communicator, message.shard.device);
    const executor = new DeviceExecutor({
      backend: device.backend,
      config: message.config,
      shard: message.shard,
      weights,
      communicator,
      dtype: message.dtype,
      kvBlockCount: message.kvBlockCount,
      kvBlockSize: message.kvBlockSize,
      maxPositions: message.maxPositions,
      ...(message.kvFill !== undefined ? { kvFill: message.kvFill } : {}),
      ...(message.graphSteps !== undefined ? { graphSteps: message.graphSteps } : {}),
    });
    handle = inlineDeviceHandle(executor);
    const connected = communicator;
    disposeCommunicator = () => connected.dispose();
  } catch (error) {
    communicator?.dispose();
    device.backend.dispose();
    throw error;
  }
}

async function call(message: DeviceWorkerCall): Promise<unknown> {
  if (!handle) throw new Error('device worker not initialised');
  // the communicator (e.g. an NCCL rank) goes before the backend it runs on
  if (message.method === 'dispose') disposeCommunicator?.();
  if (message.method === 'prefill') {
    // each layer's observation goes back as it arrives, before the call's answer
    const [requestId, tokens, needs] = message.args as Parameters<DeviceHandle['prefill']>;
    return handle.prefill(requestId, tokens, needs, (layer, observation) =>
      port.postMessage({ id: message.id, layer, observation } satisfies DeviceWorkerReply),
    );
  }
  const method = handle[message.method] as (...args: unknown[]) => unknown;
  return method(...message.args);
}

port.on('message', (message: DeviceWorkerInit | DeviceWorkerConnect | DeviceWorkerCall) => {
  queue = queue.then(async () => {
    if (!('method' in message)) {
      const id = message.kind === 'init' ? WORKER_PREPARED_ID : WORKER_CONNECTED_ID;
      try {
        if (message.kind === 'init') await init(message);
        else await connect();
        port.postMessage({ id, ok: true, value: null } satisfies DeviceWorkerReply);
      } catch (error) {
        port.postMessage(replyError(id, error));
      }
      return;
    }
    try {
      const value = await call(message);
      port.postMessage({ id: message.id, ok: true, value } satisfies DeviceWorkerReply);
    } catch (error) {
      port.postMessage(replyError(message.id, error));
    }
    if (message.method === 'dispose') port.close();
  });
});
