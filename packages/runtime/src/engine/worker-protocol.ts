import type { DType, ModelConfig } from '@fairkv/core';
import type { SharedCommunicatorState } from './communicator.js';
import type { DeviceShard } from './device-shards.js';

/** First message to a device worker: what it loads and how it talks to the others. */
export interface DeviceWorkerInit {
  modelPath: string;
  config: ModelConfig;
  shard: DeviceShard;
  backend: 'cpu';
  dtype: DType;
  kvBlockCount: number;
  kvBlockSize: number;
  maxPositions: number;
  communicator: SharedCommunicatorState;
}

/** A call from the coordinator. */
export interface DeviceWorkerCall {
  id: number;
  method: 'prefill' | 'commit' | 'discard' | 'decode' | 'sampleLogits' | 'release' | 'stats' | 'kvBlocks' | 'dispose';
  args: unknown[];
}

/** A worker's answer to a call (or to init, id -1). */
export type DeviceWorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { name: string; message: string; code?: string; stack?: string } };
