import { bytesPerElement, type DevicePrediction, type LayerPlacement, type PlanPrediction } from '@fairkv/core';
import type { PlacementProblem } from './placement-request.js';

/**
 * The one FairKV cost model (docs/cost-model.md; Zhao et al., arXiv 2502.15804, section 3): decode is
 * memory-bound, so a device's time in a layer is the bytes it reads over its bandwidth plus a fixed
 * per-layer cost, every layer waits for its slowest device and ends in two all-reduces.
 */

/** Per-device figures of a prediction. */
export interface DevicePlacementPrediction extends DevicePrediction {
  /** Weight bytes held (head slices with copies, MLP shard, norms, embedding and LM head shards). */
  weightBytes: number;
  /** KV bytes one request adds to this device at full context. */
  kvBytesPerRequest: number;
  /** Sum over layers of this device's layer time, in seconds (its busy time per step). */
  busySeconds: number;
  /** Replicas (head slices) this device hosts over all layers. */
  replicaCount: number;
}

/** What the cost model predicts for a placement: core's {@link PlanPrediction} plus balance figures. */
export interface PlacementPrediction extends PlanPrediction {
  /** Batch the step time was computed at (the request's batch, or maxBatch for `batch: 'max'`). */
  batch: number;
  devices: DevicePlacementPrediction[];
  /** Per layer: slowest device's time (attention + MLP shard + overhead), seconds. */
  layerMaxSeconds: number[];
  /** Per layer: mean device time, seconds. */
  layerMeanSeconds: number[];
  /** Per layer: max / mean device time (1 = perfectly balanced). */
  layerImbalance: number[];
  /** One all-reduce of batch x hidden activations (two per layer), seconds. */
  allReduceSeconds: number;
  /** Embedding, final norm, LM head shard and logits gather, seconds. */
  outputSeconds: number;
  /** Step time if every layer's bytes (no copies) were spread over devices in proportion to bandwidth. */
  idealStepTimeSeconds: number;
  /** idealStepTimeSeconds / stepTimeSeconds, in (0, 1]. */
  efficiency: number;
  /** Largest and mean device memory at `batch`, bytes. */
  memoryMaxBytes: number;
  memoryMeanBytes: number;
  /** Whether every device fits its usable memory (capacity x memoryUtilization) at `batch`. */
  fits: boolean;
  /** Replicas over all layers and heads; copies = replicas beyond one per head. */
  replicaCount: number;
  copyCount: number;
  /** Seconds to generate newTokens tokens for one request at this step time. */
  decodeSecondsPerRequest: number;
}

/** Seconds of one ring all-reduce of `batch x hidden` activations: 2(G-1)/G x bytes / bus + 2(G-1) latencies. */
export function allReduceSeconds(problem: PlacementProblem, batch: number): number {
  const devices = problem.deviceCount;
  if (devices === 1) return 0;
  const { allReduceBandwidthBytesPerSecond, latencySeconds } = problem.cluster.interconnect;
  const bytes = batch * problem.model.hiddenSize * bytesPerElement(problem.dtype);
  return (
    ((2 * (devices - 1)) / devices) * (bytes / allReduceBandwidthBytesPerSecond) + 2 * (devices - 1) * latencySeconds
  );
}

/** Seconds of the step's ends: embedding rows, final norm, the LM head shard on the slowest device, the f32 logits all-gather. */
export function outputSeconds(problem: PlacementProblem, batch: number): number {
  const { sizes, deviceCount, model, cluster } = problem;
  const slowest = Math.min(...problem.bandwidth);
  const element = bytesPerElement(problem.dtype);
  const read = batch * model.hiddenSize * element + sizes.lmHeadReadBytes / deviceCount + sizes.finalNormBytes;
  const gather =
    deviceCount === 1
      ? 0
      : ((deviceCount - 1) / deviceCount) *
          ((batch * model.vocabSize * 4) / cluster.interconnect.allReduceBandwidthBytesPerSecond) +
        (deviceCount - 1) * cluster.interconnect.latencySeconds;
  return read / slowest + problem.options.layerOverheadSeconds + gather;
}

/** Bytes each device reads in one layer at `batch`: its MLP shard and norms, hosted head slices, served KV. */
export function layerDeviceBytes(
  problem: PlacementProblem,
  layer: LayerPlacement,
  layerIndex: number,
  batch: number,
): number[] {
  const bytes = new Array<number>(problem.deviceCount).fill(problem.layerBaseBytes);
  const kvRow = problem.kvReadBytes[layerIndex]!;
  for (const head of layer.heads) {
    for (const replica of head.replicas) {
      bytes[replica.device]! += problem.headWeightBytes + replica.share * batch * kvRow[head.kvHead]!;
    }
  }
  return bytes;
}

/** Seconds each device spends in one layer at `batch`: bytes / bandwidth + layerOverheadSeconds. */
export function layerDeviceSeconds(
  problem: PlacementProblem,
  layer: LayerPlacement,
  layerIndex: number,
  batch: number,
): number[] {
  const overhead = problem.options.layerOverheadSeconds;
  return layerDeviceBytes(problem, layer, layerIndex, batch).map(
    (bytes, device) => bytes / problem.bandwidth[device]! + overhead,
  );
}

/** Per device: weight bytes held and KV bytes added per request (memory = weights + batch x KV per request). */
export function deviceMemoryTerms(
  problem: PlacementProblem,
  layers: LayerPlacement[],
): { weightBytes: number[]; kvBytesPerRequest: number[] } {
  const weightBytes = new Array<number>(problem.deviceCount).fill(problem.baseWeightBytes);
  const kvBytesPerRequest = new Array<number>(problem.deviceCount).fill(0);
  layers.forEach((layer, layerIndex) => {
    const row = problem.kvMemoryBytes[layerIndex]!;
    for (const head of layer.heads) {
      for (const replica of head.replicas) {
        weightBytes[replica.device]! += problem.headWeightBytes;
        kvBytesPerRequest[replica.device]! += replica.share * row[head.kvHead]!;
      }
    }
  });
  return { weightBytes, kvBytesPerRequest };
}

/** Largest batch every device fits in its usable memory; 0 when the weights alone do not fit. */
export function maxBatchOf(problem: PlacementProblem, layers: LayerPlacement[]): number {
  const { weightBytes, kvBytesPerRequest } = deviceMemoryTerms(problem, layers);
  let best = Number.POSITIVE_INFINITY;
  for (let device = 0; device < problem.deviceCount; device++) {
    const room = problem.usableMemoryBytes[device]! - weightBytes[device]!;
    if (room < 0) return 0;
    const perRequest = kvBytesPerRequest[device]!;
    if (perRequest > 0) best = Math.min(best, Math.floor(room / perRequest + 1e-9));
  }
  return Number.isFinite(best) ? best : Number.MAX_SAFE_INTEGER;
}

/** Step time at `batch`: sum over layers of the slowest device plus two all-reduces, plus the output stage. */
export function stepSeconds(problem: PlacementProblem, layers: LayerPlacement[], batch: number): number {
  let total = outputSeconds(problem, batch) + 2 * problem.layerCount * allReduceSeconds(problem, batch);
  layers.forEach((layer, index) => {
    total += Math.max(...layerDeviceSeconds(problem, layer, index, batch));
  });
  return total;
}

/** Step time of the no-copy placement spread perfectly by bandwidth: a lower bound for every plan. */
export function idealStepSeconds(problem: PlacementProblem, batch: number): number {
  const totalBandwidth = problem.bandwidth.reduce((sum, value) => sum + value, 0);
  let total = outputSeconds(problem, batch) + 2 * problem.layerCount * allReduceSeconds(problem, batch);
  for (let layer = 0; layer < problem.layerCount; layer++) {
    const kv = problem.kvReadBytes[layer]!.reduce((sum, value) => sum + value, 0);
    const bytes =
      problem.deviceCount * problem.layerBaseBytes + problem.kvHeadCount * problem.headWeightBytes + batch * kv;
    total += bytes / totalBandwidth + problem.options.layerOverheadSeconds;
  }
  return total;
}

/** Applies the cost model to a placement at `batch` (docs/cost-model.md lists every formula). */
export function predictLayers(problem: PlacementProblem, layers: LayerPlacement[], batch: number): PlacementPrediction {
  const devices = problem.deviceCount;
  const busy = new Array<number>(devices).fill(0);
  const layerMaxSeconds: number[] = [];
  const layerMeanSeconds: number[] = [];
  layers.forEach((layer, index) => {
    const seconds = layerDeviceSeconds(problem, layer, index, batch);
    seconds.forEach((value, device) => {
      busy[device]! += value;
    });
    layerMaxSeconds.push(Math.max(...seconds));
    layerMeanSeconds.push(seconds.reduce((sum, value) => sum + value, 0) / devices);
  });
  const allReduce = allReduceSeconds(problem, batch);
  const output = outputSeconds(problem, batch);
  const stepTimeSeconds =
    layerMaxSeconds.reduce((sum, value) => sum + value, 0) + 2 * problem.layerCount * allReduce + output;
  const idealStepTimeSeconds = idealStepSeconds(problem, batch);
  const { weightBytes, kvBytesPerRequest } = deviceMemoryTerms(problem, layers);
  const replicaCounts = new Array<number>(devices).fill(0);
  for (const layer of layers)
    for (const head of layer.heads) for (const replica of head.replicas) replicaCounts[replica.device]! += 1;
  const devicePredictions = weightBytes.map((weights, device) => ({
    memoryBytes: weights + batch * kvBytesPerRequest[device]!,
    kvBytes: batch * kvBytesPerRequest[device]!,
    weightBytes: weights,
    kvBytesPerRequest: kvBytesPerRequest[device]!,
    busySeconds: busy[device]!,
    replicaCount: replicaCounts[device]!,
  }));
  const memories = devicePredictions.map((device) => device.memoryBytes);
  const replicaCount = replicaCounts.reduce((sum, value) => sum + value, 0);
  return {
    stepTimeSeconds,
    maxBatch: maxBatchOf(problem, layers),
    throughputTokensPerSecond: batch / stepTimeSeconds,
    devices: devicePredictions,
    batch,
    layerMaxSeconds,
    layerMeanSeconds,
    layerImbalance: layerMaxSeconds.map((max, index) => max / layerMeanSeconds[index]!),
    allReduceSeconds: allReduce,
    outputSeconds: output,
    idealStepTimeSeconds,
    efficiency: Math.min(1, idealStepTimeSeconds / stepTimeSeconds),
    memoryMaxBytes: Math.max(...memories),
    memoryMeanBytes: memories.reduce((sum, value) => sum + value, 0) / devices,
    fits: memories.every((memory, device) => memory <= problem.usableMemoryBytes[device]! * (1 + 1e-12)),
    replicaCount,
    copyCount: replicaCount - problem.layerCount * problem.kvHeadCount,
    decodeSecondsPerRequest: problem.newTokens * stepTimeSeconds,
  };
}
