import type { LayerPlacement } from '@fairkv/core';
import type { PlacementProblem } from '../placement-request.js';

/**
 * One layer's cost-model terms in seconds, the form the solvers work in: device `g` spends
 * `base[g] + sum over hosted replicas of (weight[g] + share x kv[h][g])` in the layer
 * (docs/cost-model.md, "per layer and device").
 */
export interface LayerCosts {
  /** MLP shard, norms and the fixed per-layer cost of each device. */
  base: number[];
  /** Reading one kv head's weight slice on each device. */
  weight: number[];
  /** `kv[h][g]`: reading head h's KV for the whole batch on device g. */
  kv: number[][];
}

/** The {@link LayerCosts} of layer `layerIndex` at `batch`. */
export function layerCosts(problem: PlacementProblem, layerIndex: number, batch: number): LayerCosts {
  const { bandwidth, options } = problem;
  const row = problem.kvReadBytes[layerIndex]!;
  return {
    base: bandwidth.map((bw) => problem.layerBaseBytes / bw + options.layerOverheadSeconds),
    weight: bandwidth.map((bw) => problem.headWeightBytes / bw),
    kv: row.map((bytes) => bandwidth.map((bw) => (batch * bytes) / bw)),
  };
}

/** Device times of a layer given per-head replica shares (`shares[h]`: device -> share). */
export function deviceTimes(costs: LayerCosts, shares: Map<number, number>[]): number[] {
  const times = [...costs.base];
  shares.forEach((replicas, head) => {
    for (const [device, share] of replicas) times[device]! += costs.weight[device]! + share * costs.kv[head]![device]!;
  });
  return times;
}

/** Builds the plan's layer entry, heads in kv-head order, replicas by device, shares renormalised to sum to 1. */
export function toLayerPlacement(shares: Map<number, number>[]): LayerPlacement {
  return {
    heads: shares.map((replicas, kvHead) => {
      const entries = [...replicas].filter(([, share]) => share > 0).sort(([a], [b]) => a - b);
      const total = entries.reduce((sum, [, share]) => sum + share, 0);
      return { kvHead, replicas: entries.map(([device, share]) => ({ device, share: share / total })) };
    }),
  };
}

/** Per-head replica maps of a layer placement (the inverse of {@link toLayerPlacement}). */
export function fromLayerPlacement(layer: LayerPlacement, kvHeadCount: number): Map<number, number>[] {
  const shares = Array.from({ length: kvHeadCount }, () => new Map<number, number>());
  for (const head of layer.heads)
    for (const replica of head.replicas) shares[head.kvHead]!.set(replica.device, replica.share);
  return shares;
}

/** Index of the largest value (first on ties). */
export function argMax(values: readonly number[]): number {
  let best = 0;
  for (let index = 1; index < values.length; index++) if (values[index]! > values[best]!) best = index;
  return best;
}
