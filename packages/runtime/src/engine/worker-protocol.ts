import type { DType, ModelConfig } from '@fairkv/core';
import type { SharedCommunicatorState } from './communicator.js';
import type { DeviceShard } from './device-shards.js';
import type { WorkerBackendModule } from './worker-backend.js';

/** Where a device worker gets its weights: slices of a model file, or dummy weights from a seed. */
export type WorkerWeightSource = { kind: 'file'; path: string } | { kind: 'dummy'; seed: number };

/** First message to a device worker: what it loads and how it talks to the others. */
export interface DeviceWorkerInit {
  kind: 'init';
  weights: WorkerWeightSource;
  config: ModelConfig;
  shard: DeviceShard;
  deviceCount: number;
  backend: 'cpu' | WorkerBackendModule;
  dtype: DType;
  kvBlockCount: number;
  kvBlockSize: number;
  kvFill?: number;
  graphSteps?: boolean;
  maxPositions: number;
  communicator: SharedCommunicatorState;
}

/** Second message, sent once every device answered `init`: connect the communicator, upload the weights. */
export interface DeviceWorkerConnect {
  kind: 'connect';
}

/** Reply ids of the two start-up messages (calls use ids from 0). */
export const WORKER_PREPARED_ID = -1;
export const WORKER_CONNECTED_ID = -2;

/** A call from the coordinator. */
export interface DeviceWorkerCall {
  id: number;
  method:
    | 'prefill'
    | 'commit'
    | 'admitSynthetic'
    | 'discard'
    | 'decode'
    | 'sampleLogits'
    | 'release'
    | 'stats'
    | 'kvBlocks'
    | 'startProfile'
    | 'stopProfile'
    | 'dispose';
  args: unknown[];
}

/**
 * A worker's answer to a call (or to init, id -1, and connect, id -2); before a `prefill` call's answer,
 * one `layer` message per layer carries that layer's observation (`DeviceHandle.prefill`'s `onLayer`).
 */
export type DeviceWorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; layer: number; observation: unknown }
  | { id: number; ok: false; error: { name: string; message: string; code?: string; stack?: string } };
