/**
 * Entry point of a device worker thread: loads only this device's weight slices from the model file,
 * creates its own backend, and serves the coordinator's calls in order. All-reduces go through the
 * shared-memory communicator, so the workers of one engine run each layer in lockstep.
 */
import { parentPort } from 'node:worker_threads';
import { createCpuBackend } from '@fairkv/kernels';
import { loadModel } from '../model/load-model.js';
import { SharedMemoryCommunicator } from './communicator.js';
import { DeviceExecutor } from './device-executor.js';
import { type DeviceHandle, inlineDeviceHandle } from './device-handle.js';
import { sliceShardWeights } from './shard-weights.js';
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

async function init(message: DeviceWorkerInit): Promise<void> {
  const model = await loadModel(message.modelPath);
  try {
    const weights = await sliceShardWeights(model.weights, message.config, message.shard);
    const executor = new DeviceExecutor({
      backend: createCpuBackend(),
      config: message.config,
      shard: message.shard,
      weights,
      communicator: new SharedMemoryCommunicator(message.communicator, message.shard.device),
      dtype: message.dtype,
      kvBlockCount: message.kvBlockCount,
      kvBlockSize: message.kvBlockSize,
      maxPositions: message.maxPositions,
    });
    handle = inlineDeviceHandle(executor);
  } finally {
    model.close();
  }
}

async function call(message: DeviceWorkerCall): Promise<unknown> {
  if (!handle) throw new Error('device worker not initialised');
  const method = handle[message.method] as (...args: unknown[]) => unknown;
  return method(...message.args);
}

port.on('message', (message: DeviceWorkerInit | DeviceWorkerCall) => {
  queue = queue.then(async () => {
    if ('modelPath' in message) {
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
