import type { GraphStepStats } from '@fairkv/kernels';

/** Memory and time figures one device reports. */
export interface DeviceStats {
  device: number;
  /** KV bytes held (allocated pool blocks). */
  kvBytes: number;
  /** KV bytes held per layer. */
  layerKvBytes: number[];
  /** Bytes of the KV pool. */
  kvCapacityBytes: number;
  /** Every live buffer of the backend (weights, pool, scratch). */
  allocatedBytes: number;
  /** Compute time per layer since start, excluding all-reduce waits. */
  layerBusySeconds: number[];
  /**
   * What the backend's graph steps did (captures, replays, fallbacks), where decode steps run as graph
   * steps on this device; absent otherwise.
   */
  graphSteps?: GraphStepStats;
}

/** Accumulates busy milliseconds per layer. */
export class LayerTimer {
  readonly #milliseconds: Float64Array;

  constructor(layerCount: number) {
    this.#milliseconds = new Float64Array(layerCount);
  }

  add(layer: number, milliseconds: number): void {
    this.#milliseconds[layer]! += milliseconds;
  }

  seconds(): number[] {
    return Array.from(this.#milliseconds, (ms) => ms / 1000);
  }
}
