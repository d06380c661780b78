import type { LayerPlacement } from '@fairkv/core';
import type { PlacementProblem } from '../placement-request.js';

/** Groups of interchangeable devices: same bandwidth and same capacity. */
export function identicalDeviceGroups(problem: PlacementProblem): number[][] {
  const groups = new Map<string, number[]>();
  problem.cluster.devices.forEach((device, index) => {
    const key = `${device.memoryBandwidthBytesPerSecond}/${device.memoryBytes}`;
    groups.set(key, [...(groups.get(key) ?? []), index]);
  });
  return [...groups.values()];
}

/** Renames the devices of one layer: replica on device d moves to `mapping[d]`. */
export function relabelLayer(layer: LayerPlacement, mapping: readonly number[]): LayerPlacement {
  return {
    heads: layer.heads.map((head) => ({
      kvHead: head.kvHead,
      replicas: head.replicas
        .map((replica) => ({ device: mapping[replica.device]!, share: replica.share }))
        .sort((a, b) => a.device - b.device),
    })),
  };
}

/**
 * Balances memory across layers without changing any layer's time: within each group of identical
 * devices a layer's device roles are interchangeable, so each layer's heaviest role (weights + KV at
 * `batch`) goes to the device with the least memory so far. Solvers that balance each layer on its own
 * (fair-copy's levelling, the per-layer ILP) use it so that the batch that fits is not lost to one
 * device collecting every layer's heaviest role.
 */
export function balanceMemoryByRelabeling(
  problem: PlacementProblem,
  layers: LayerPlacement[],
  batch: number,
): LayerPlacement[] {
  const groups = identicalDeviceGroups(problem);
  const memory = new Array<number>(problem.deviceCount).fill(problem.baseWeightBytes);
  const contributions: number[][] = [];
  const mappings = layers.map((layer, layerIndex) => {
    const contribution = new Array<number>(problem.deviceCount).fill(0);
    for (const head of layer.heads) {
      for (const replica of head.replicas) {
        contribution[replica.device]! +=
          problem.headWeightBytes + replica.share * batch * problem.kvMemoryBytes[layerIndex]![head.kvHead]!;
      }
    }
    contributions.push(contribution);
    const mapping = Array.from({ length: problem.deviceCount }, (_, device) => device);
    for (const group of groups) {
      const roles = [...group].sort((a, b) => contribution[b]! - contribution[a]! || a - b);
      const free = [...group];
      for (const role of roles) {
        let target = 0;
        for (let index = 1; index < free.length; index++)
          if (memory[free[index]!]! < memory[free[target]!]!) target = index;
        const device = free.splice(target, 1)[0]!;
        mapping[role] = device;
        memory[device]! += contribution[role]!;
      }
    }
    return mapping;
  });
  for (const group of groups) improveBySwappingRoles(group, mappings, contributions, memory);
  return layers.map((layer, index) => relabelLayer(layer, mappings[index]!));
}

/**
 * Local search after the greedy pass: while some layer's roles on the fullest and the emptiest device of a
 * group can be exchanged to lower the fuller of the two, exchange the pair that levels them best.
 */
function improveBySwappingRoles(
  group: number[],
  mappings: number[][],
  contributions: number[][],
  memory: number[],
): void {
  if (group.length < 2) return;
  for (let round = 0; round < 16 * mappings.length; round++) {
    let full = group[0]!;
    let empty = group[0]!;
    for (const device of group) {
      if (memory[device]! > memory[full]!) full = device;
      if (memory[device]! < memory[empty]!) empty = device;
    }
    const gap = memory[full]! - memory[empty]!;
    let best = -1;
    let bestValue = memory[full]!;
    let bestDelta = 0;
    mappings.forEach((mapping, layer) => {
      const roleOnFull = mapping.indexOf(full);
      const roleOnEmpty = mapping.indexOf(empty);
      const delta = contributions[layer]![roleOnFull]! - contributions[layer]![roleOnEmpty]!;
      if (delta <= 0 || delta >= gap) return;
      const value = Math.max(memory[full]! - delta, memory[empty]! + delta);
      if (value < bestValue) [best, bestValue, bestDelta] = [layer, value, delta];
    });
    if (best < 0) return;
    const mapping = mappings[best]!;
    const roleOnFull = mapping.indexOf(full);
    const roleOnEmpty = mapping.indexOf(empty);
    mapping[roleOnFull] = empty;
    mapping[roleOnEmpty] = full;
    memory[full]! -= bestDelta;
    memory[empty]! += bestDelta;
  }
}
