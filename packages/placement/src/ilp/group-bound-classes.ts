import type { GroupSolution } from './group-bound.js';

/** One layer in bytes, for devices of different bandwidths (the heterogeneous group bound). */
export interface ByteLayer {
  /** KV bytes each head's whole batch reads in the layer. */
  loads: number[];
  /** Bytes of one head's weight slice. */
  weightBytes: number;
  /** Bytes every device reads in the layer whatever it hosts (MLP shard, norms). */
  baseBytes: number;
  /** Fixed seconds per layer and device. */
  overheadSeconds: number;
  /** Bandwidth of each device, bytes/s. */
  bandwidth: number[];
}

/** Above this many device-count vectors (product over classes of count + 1) the bound is not attempted. */
export const MAX_COUNT_VECTORS = 400;

const RELATIVE = 1e-12;

interface Classes {
  bandwidth: number[];
  devices: number[][];
  /** Every count vector, as per-class counts; index 0 is all zeros. */
  vectors: number[][];
  /** Index of a count vector from its mixed-radix digits. */
  index: (counts: number[]) => number;
}

function deviceClasses(bandwidth: number[]): Classes | null {
  const byBandwidth = new Map<number, number[]>();
  bandwidth.forEach((bw, device) => {
    byBandwidth.set(bw, [...(byBandwidth.get(bw) ?? []), device]);
  });
  const classBandwidth = [...byBandwidth.keys()];
  const devices = [...byBandwidth.values()];
  const total = devices.reduce((product, group) => product * (group.length + 1), 1);
  if (total > MAX_COUNT_VECTORS) return null;
  const vectors: number[][] = [];
  for (let code = 0; code < total; code++) {
    let rest = code;
    vectors.push(
      devices.map((group) => {
        const digit = rest % (group.length + 1);
        rest = Math.floor(rest / (group.length + 1));
        return digit;
      }),
    );
  }
  const index = (counts: number[]) =>
    counts.reduceRight((code, count, c) => code * (devices[c]!.length + 1) + count, 0);
  return { bandwidth: classBandwidth, devices, vectors, index };
}

/**
 * Feasibility of layer time `time`: can the heads be split into groups, each given devices (a count per
 * class) whose room `sum (time - overhead) * bw - base - weight` covers `sum loads + weight * (|S| - 1)`?
 * Returns the groups (head mask, count vector) or null.
 */
function feasibleGroups(
  layer: ByteLayer,
  classes: Classes,
  time: number,
  sums: Float64Array,
  sizes: Uint8Array,
): [number, number[]][] | null {
  const room = classes.bandwidth.map((bw) => (time - layer.overheadSeconds) * bw - layer.baseBytes);
  if (room.some((value) => value < -RELATIVE * layer.baseBytes)) return null;
  const heads = layer.loads.length;
  const full = (1 << heads) - 1;
  const vectorCount = classes.vectors.length;
  // minimal count vectors that cover each head group
  const minimal: number[][] = new Array(full + 1);
  for (let mask = 1; mask <= full; mask++) {
    const need = sums[mask]! + layer.weightBytes * (sizes[mask]! - 1);
    const fits = classes.vectors
      .map((counts, code) => ({ counts, code }))
      .filter(({ counts }) => counts.some((count) => count > 0))
      .filter(
        ({ counts }) =>
          counts.reduce((sum, count, c) => sum + count * (room[c]! - layer.weightBytes), 0) >= need * (1 - RELATIVE),
      );
    minimal[mask] = fits
      .filter(
        ({ counts }) =>
          !fits.some((other) => other.counts !== counts && other.counts.every((count, c) => count <= counts[c]!)),
      )
      .map(({ code }) => code);
  }
  const reached = new Int32Array((full + 1) * vectorCount).fill(-1);
  const via = new Int32Array((full + 1) * vectorCount);
  reached[0] = 0;
  for (let mask = 0; mask < full; mask++) {
    const low = ~mask & (mask + 1);
    const rest = full & ~mask & ~low;
    for (let used = 0; used < vectorCount; used++) {
      if (reached[mask * vectorCount + used]! < 0) continue;
      const usedCounts = classes.vectors[used]!;
      for (let sub = rest; ; sub = (sub - 1) & rest) {
        const group = sub | low;
        for (const code of minimal[group]!) {
          const counts = classes.vectors[code]!;
          const next = counts.map((count, c) => count + usedCounts[c]!);
          if (next.some((count, c) => count > classes.devices[c]!.length)) continue;
          const state = (mask | group) * vectorCount + classes.index(next);
          if (reached[state]! < 0) {
            reached[state] = used;
            via[state] = group * vectorCount + code;
          }
        }
        if (sub === 0) break;
      }
    }
  }
  for (let used = 0; used < vectorCount; used++) {
    if (reached[full * vectorCount + used]! < 0) continue;
    const groups: [number, number[]][] = [];
    let [mask, state] = [full, used];
    while (mask) {
      const step = via[mask * vectorCount + state]!;
      const group = Math.floor(step / vectorCount);
      groups.push([group, classes.vectors[step % vectorCount]!]);
      state = reached[mask * vectorCount + state]!;
      mask ^= group;
    }
    return groups;
  }
  return null;
}

/**
 * The group bound of group-bound.ts for devices of different bandwidths: some optimum is a forest, a
 * tree with heads S on device set D needs `sum_D ((t - overhead) bw_g - base) >= sum_S loads + weight (|S| + |D| - 1)`,
 * and the wrap-around over D (each device filled to its own capacity) reaches it. Devices are grouped by
 * bandwidth into classes; the subset DP runs over (heads, device counts per class). Exact; null when there
 * are more than {@link MAX_COUNT_VECTORS} count vectors or more than 12 heads.
 */
export function solveLayerByDeviceClasses(layer: ByteLayer, maxReplicasPerHead: number): GroupSolution | null {
  const heads = layer.loads.length;
  if (heads > 12) return null;
  const classes = deviceClasses(layer.bandwidth);
  if (!classes) return null;
  const sums = new Float64Array(1 << heads);
  const sizes = new Uint8Array(1 << heads);
  for (let mask = 1; mask < 1 << heads; mask++) {
    const lowest = 31 - Math.clz32(mask & -mask);
    sums[mask] = sums[mask & (mask - 1)]! + layer.loads[lowest]!;
    sizes[mask] = sizes[mask & (mask - 1)]! + 1;
  }
  const floor = layer.overheadSeconds + layer.baseBytes / Math.min(...layer.bandwidth);
  const candidates = [floor];
  for (let mask = 1; mask < 1 << heads; mask++) {
    for (const counts of classes.vectors) {
      const devices = counts.reduce((sum, count) => sum + count, 0);
      if (devices === 0) continue;
      const bandwidth = counts.reduce((sum, count, c) => sum + count * classes.bandwidth[c]!, 0);
      const bytes = sums[mask]! + layer.weightBytes * (sizes[mask]! + devices - 1) + devices * layer.baseBytes;
      const time = layer.overheadSeconds + bytes / bandwidth;
      if (time >= floor) candidates.push(time);
    }
  }
  candidates.sort((a, b) => a - b);
  let [low, high] = [0, candidates.length - 1];
  while (low < high) {
    const middle = (low + high) >> 1;
    if (feasibleGroups(layer, classes, candidates[middle]! * (1 + RELATIVE), sums, sizes)) high = middle;
    else low = middle + 1;
  }
  const optimum = candidates[low]!;
  const groups = feasibleGroups(layer, classes, optimum * (1 + RELATIVE), sums, sizes);
  if (!groups) return { lowerBound: optimum, shares: null };
  const shares = Array.from({ length: heads }, () => new Map<number, number>());
  const nextInClass = classes.devices.map(() => 0);
  const target = optimum * (1 + 1e-9);
  for (const [mask, counts] of groups) {
    const devices = counts.flatMap((count, c) => {
      const start = nextInClass[c]!;
      nextInClass[c] = start + count;
      return classes.devices[c]!.slice(start, start + count);
    });
    const members = layer.loads.map((_, head) => head).filter((head) => mask & (1 << head));
    members.sort((a, b) => layer.loads[b]! - layer.loads[a]!);
    let slot = 0;
    const capacity = (device: number) => (target - layer.overheadSeconds) * layer.bandwidth[device]! - layer.baseBytes;
    let room = capacity(devices[0]!);
    for (const head of members) {
      const total = layer.loads[head]!;
      let left = total;
      let first = true;
      while (first || left > total * 1e-12) {
        first = false;
        while (
          slot < devices.length &&
          room - layer.weightBytes <= capacity(devices[slot]!) * 1e-12 &&
          !(left === 0 && room >= layer.weightBytes)
        ) {
          slot += 1;
          if (slot < devices.length) room = capacity(devices[slot]!);
        }
        if (slot >= devices.length) return { lowerBound: optimum, shares: null };
        const portion = Math.min(left, room - layer.weightBytes);
        shares[head]!.set(devices[slot]!, total > 0 ? portion / total : 1);
        room -= layer.weightBytes + portion;
        left -= portion;
      }
    }
  }
  const capped = shares.every((replicas) => replicas.size <= maxReplicasPerHead);
  return { lowerBound: optimum, shares: capped ? shares : null };
}
