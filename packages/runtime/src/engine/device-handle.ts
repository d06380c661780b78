import type { BackendProfile } from '@fairkv/kernels';
import type { DecodeRow, DeviceExecutor, PrefillObservation, RowSampling } from './device-executor.js';
import type { DeviceStats } from './device-stats.js';
import type { OnLayerObserved } from './prefill-observation.js';

/** Observation inputs a prefill must produce for the policy. */
export interface PrefillNeeds {
  windowRows: number;
  accumulated: boolean;
  keyNorms: boolean;
}

/**
 * One device as the coordinator drives it, in this thread ({@link DeviceExecutor} itself) or in a
 * worker thread (a message proxy). All devices receive the same calls in the same order; the
 * all-reduces inside them keep them in lockstep.
 */
export interface DeviceHandle {
  readonly device: number;
  /** See {@link DeviceExecutor.prefill}; `onLayer` is called in this thread. */
  prefill(
    requestId: string,
    tokens: Int32Array,
    needs: PrefillNeeds,
    onLayer?: OnLayerObserved,
  ): Promise<PrefillObservation>;
  commit(requestId: string, kept: (Int32Array | null)[][], reserveTokens: number): Promise<void>;
  /** Admits a request without a prefill (decode benchmarks): see {@link DeviceExecutor.admitSynthetic}. */
  admitSynthetic(requestId: string, lengths: (number | null)[][], reserveTokens: number): Promise<void> | void;
  discard(requestId: string): Promise<void> | void;
  decode(
    rows: DecodeRow[],
    sampling: RowSampling[] | undefined,
    returnLogits: boolean,
  ): Promise<{ tokens?: Int32Array; logits?: Float32Array }>;
  sampleLogits(logits: Float32Array, sampling: RowSampling): Promise<number>;
  release(requestId: string): Promise<void> | void;
  stats(): Promise<DeviceStats> | DeviceStats;
  /** Free KV blocks and the pool's block count and size. */
  kvBlocks():
    | Promise<{ free: number; total: number; blockSize: number }>
    | { free: number; total: number; blockSize: number };
  /** Starts timing this device's operations (see {@link DeviceExecutor.startProfile}). */
  startProfile(): Promise<void> | void;
  /** Stops timing and returns this device's profile (see {@link DeviceExecutor.stopProfile}). */
  stopProfile(): Promise<BackendProfile>;
  dispose(): Promise<void> | void;
  /**
   * Optional: releases every device of this handle's engine from the collectives it waits in (their
   * all-reduces then fail), called by the coordinator once one device failed part-way through a call.
   * Idempotent; the same group abort on every handle of an engine. The devices are unusable afterwards
   * except for `dispose`.
   */
  abortCollectives?(): Promise<void> | void;
}

/** Adapts an in-thread executor to the {@link DeviceHandle} the coordinator drives. */
export function inlineDeviceHandle(executor: DeviceExecutor): DeviceHandle {
  return {
    device: executor.shard.device,
    prefill: (requestId, tokens, needs, onLayer) => executor.prefill(requestId, tokens, needs, onLayer),
    commit: (requestId, kept, reserveTokens) => executor.commit(requestId, kept, reserveTokens),
    admitSynthetic: (requestId, lengths, reserveTokens) => executor.admitSynthetic(requestId, lengths, reserveTokens),
    discard: (requestId) => executor.discard(requestId),
    decode: (rows, sampling, returnLogits) => executor.decode(rows, sampling, returnLogits),
    sampleLogits: (logits, sampling) => executor.sampleLogits(logits, sampling),
    release: (requestId) => executor.release(requestId),
    stats: () => executor.stats(),
    kvBlocks: () => ({
      free: executor.kv.allocator.freeBlockCount,
      total: executor.kv.allocator.blockCount,
      blockSize: executor.kv.allocator.blockSize,
    }),
    startProfile: () => executor.startProfile(),
    stopProfile: () => executor.stopProfile(),
    dispose: () => executor.dispose(),
  };
}
