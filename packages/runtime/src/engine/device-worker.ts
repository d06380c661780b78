/**
 * Entry point of a device worker thread: loads only this device's weight slices from the model file
 * (or makes dummy weights), creates its own backend (the CPU backend, or what a backend module such
 * as `@fairkv/kernels-cuda`'s worker device creates), and serves the coordinator's calls in order.
 * All-reduces go through the module's communicator (e.g. an NCCL rank) or the shared-memory one, so
 * the workers of one engine run each layer in lockstep.
 */
import { parentPort } from 'node:worker_threads';
import { type Backend, createCpuBackend } from '@fairkv/kernels';
import { loadModel } from '../model/load-model.js';
import { type Communicator, SharedMemoryCommunicator } from './communicator.js';
import { DeviceExecutor } from './device-executor.js';
import { type DeviceHandle, inlineDeviceHandle } from './device-handle.js';
import { dummyShardWeights } from './dummy-weights.js';
import { type ShardWeights, sliceShardWeights } from './shard-weights.js';
import type { CreateWorkerDevice } from './worker-backend.js';
import type { DeviceWorkerCall, DeviceWorkerInit, DeviceWorkerReply } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('device-worker must run in a worker thread');

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
    return await sliceShardWeights(model.weights, message.config, message.shard);
  } finally {
    model.close();
  }
}

async function createDevice(message: DeviceWorkerInit): Promise<{ backend: Backend; communicator: Communicator }> {
  const shared = () => new SharedMemoryCommunicator(message.communicator, message.shard.device);
  if (message.backend === 'cpu') return { backend: createCpuBackend(), communicator: shared() };
  const { module, options } = message.backend;
  const loaded = (await import(module)) as { createWorkerDevice?: CreateWorkerDevice };
  if (typeof loaded.createWorkerDevice !== 'function') {
    throw new TypeError(`backend module ${module} does not export a createWorkerDevice function`);
  }
  const device = await loaded.createWorkerDevice({
    device: message.shard.device,
    deviceCount: message.deviceCount,
    options,
  });
  return { backend: device.backend, communicator: device.communicator ?? shared() };
}

let disposeCommunicator: (() => void) | undefined;

async function init(message: DeviceWorkerInit): Promise<void> {
  // weights first: a backend module may block this thread until every device joined (NCCL)
  const weights = await loadWeights(message);
  const { backend, communicator } = await createDevice(message);
  try {
    const executor = new DeviceExecutor({
      backend,
      config: message.config,
      shard: message.shard,
      weights,
      communicator,
      dtype: message.dtype,
      kvBlockCount: message.kvBlockCount,
      kvBlockSize: message.kvBlockSize,
      maxPositions: message.maxPositions,
      ...(message.kvFill !== undefined ? { kvFill: message.kvFill } : {}),
    });
    handle = inlineDeviceHandle(executor);
    disposeCommunicator = () => communicator.dispose();
  } catch (error) {
    communicator.dispose();
    backend.dispose();
    throw error;
  }
}

async function call(message: DeviceWorkerCall): Promise<unknown> {
  if (!handle) throw new Error('device worker not initialised');
  // the communicator (e.g. an NCCL rank) goes before the backend it runs on
  if (message.method === 'dispose') disposeCommunicator?.();
  const method = handle[message.method] as (...args: unknown[]) => unknown;
  return method(...message.args);
}

port.on('message', (message: DeviceWorkerInit | DeviceWorkerCall) => {
  queue = queue.then(async () => {
    if (!('method' in message)) {
      try {
        await init(message);
        port.postMessage({ id: -1, ok: true, value: null } satisfies DeviceWorkerReply);
      } catch (error) {
        port.postMessage(replyError(-1, error));
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
