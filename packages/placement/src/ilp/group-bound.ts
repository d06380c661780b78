import type { LayerCosts } from '../solvers/layer-costs.js';

/**
 * The exact optimum of one layer on identical devices, from the structure of Fair-Copying solutions.
 *
 * Some optimal placement's head-device graph (an edge per replica) is a forest: along a cycle,
 * shares can shift between the cycle's heads (in proportion to their loads) without changing any
 * device's time until a replica empties, which then saves its weight slice. A tree with heads S and
 * d devices has |S| + d - 1 replicas, so its slowest device takes at least
 * `T(S, d) = base + (sum of S's loads + weight x (|S| + d - 1)) / d`, and McNaughton's wrap-around
 * (fill the d devices in turn, splitting a head where a device is full) reaches it. Hence
 * `optimum = min over partitions of the heads into groups S_i with d_i devices (sum d_i <= G) of
 * max_i T(S_i, d_i)`: found by binary search over the candidate values T(S, d) with a subset DP for
 * feasibility. Exact when every device has the same bandwidth; the per-head replica cap is checked
 * on the construction (a violated cap leaves the bound valid but not reached).
 */
export interface GroupSolution {
  /** The optimum layer time (a valid lower bound whatever the replica cap). */
  lowerBound: number;
  /** A placement reaching it (per head: device -> share), or null when the replica cap forbids it. */
  shares: Map<number, number>[] | null;
}

/** Heads above this count are not handled (3^H subset DP). */
export const GROUP_BOUND_MAX_HEADS = 12;

const RELATIVE = 1e-12;

/** Fewest devices a group with `load` total and `count` heads needs at layer time `time` (Infinity if none). */
function devicesNeeded(
  load: number,
  count: number,
  time: number,
  base: number,
  weight: number,
  devices: number,
): number {
  if (count === 0) return 0;
  const room = time - base - weight;
  if (room <= 0) return Number.POSITIVE_INFINITY;
  const needed = Math.max(1, Math.ceil((load + weight * (count - 1)) / room - RELATIVE * devices));
  return needed <= devices ? needed : Number.POSITIVE_INFINITY;
}

interface Subsets {
  load: Float64Array;
  count: Uint8Array;
}

function subsetSums(loads: number[]): Subsets {
  const size = 1 << loads.length;
  const load = new Float64Array(size);
  const count = new Uint8Array(size);
  for (let mask = 1; mask < size; mask++) {
    const low = 31 - Math.clz32(mask & -mask);
    load[mask] = load[mask & (mask - 1)]! + loads[low]!;
    count[mask] = count[mask & (mask - 1)]! + 1;
  }
  return { load, count };
}

/** Minimum devices to cover every head at `time`, and the chosen groups (mask, devices). */
function cover(subsets: Subsets, heads: number, time: number, base: number, weight: number, devices: number) {
  const full = (1 << heads) - 1;
  const need = new Float64Array(full + 1);
  for (let mask = 1; mask <= full; mask++)
    need[mask] = devicesNeeded(subsets.load[mask]!, subsets.count[mask]!, time, base, weight, devices);
  const best = new Float64Array(full + 1).fill(Number.POSITIVE_INFINITY);
  const choice = new Int32Array(full + 1);
  best[0] = 0;
  for (let mask = 1; mask <= full; mask++) {
    const low = mask & -mask;
    const rest = mask ^ low;
    // enumerate subsets of `rest`, each joined with the lowest head
    for (let sub = rest; ; sub = (sub - 1) & rest) {
      const group = sub | low;
      const value = need[group]! + best[mask ^ group]!;
      if (value < best[mask]!) {
        best[mask] = value;
        choice[mask] = group;
      }
      if (sub === 0) break;
    }
  }
  const groups: [number, number][] = [];
  if (best[full]! <= devices) {
    for (let mask = full; mask; mask ^= choice[mask]!) groups.push([choice[mask]!, need[choice[mask]!]!]);
  }
  return { devicesUsed: best[full]!, groups };
}

/**
 * Like {@link cover} with at most `maxCopies` copies in the layer: a group of |S| heads on d devices
 * has d - 1 copies, so the DP also tracks copies used.
 */
function coverWithCopies(
  subsets: Subsets,
  heads: number,
  time: number,
  base: number,
  weight: number,
  devices: number,
  maxCopies: number,
) {
  const full = (1 << heads) - 1;
  const width = maxCopies + 1;
  const need = new Float64Array(full + 1);
  for (let mask = 1; mask <= full; mask++)
    need[mask] = devicesNeeded(subsets.load[mask]!, subsets.count[mask]!, time, base, weight, devices);
  const best = new Float64Array((full + 1) * width).fill(Number.POSITIVE_INFINITY);
  const choice = new Int32Array((full + 1) * width);
  best[0] = 0;
  for (let mask = 1; mask <= full; mask++) {
    const low = mask & -mask;
    const rest = mask ^ low;
    for (let sub = rest; ; sub = (sub - 1) & rest) {
      const group = sub | low;
      const copies = need[group]! - 1;
      if (copies <= maxCopies) {
        for (let used = copies; used <= maxCopies; used++) {
          const value = need[group]! + best[(mask ^ group) * width + used - copies]!;
          if (value < best[mask * width + used]!) {
            best[mask * width + used] = value;
            choice[mask * width + used] = group;
          }
        }
      }
      if (sub === 0) break;
    }
  }
  let used = -1;
  for (let copies = 0; copies <= maxCopies; copies++) {
    if (
      best[full * width + copies]! <= devices &&
      (used < 0 || best[full * width + copies]! < best[full * width + used]!)
    )
      used = copies;
  }
  const groups: [number, number][] = [];
  if (used < 0) return { devicesUsed: Number.POSITIVE_INFINITY, groups };
  for (let mask = full; mask; ) {
    const group = choice[mask * width + used]!;
    groups.push([group, need[group]!]);
    used -= need[group]! - 1;
    mask ^= group;
  }
  return { devicesUsed: groups.reduce((sum, [, count]) => sum + count, 0), groups };
}

/** McNaughton's wrap-around of a group's heads over `deviceIds` at layer time `time`. */
function wrapAround(
  costs: LayerCosts,
  heads: number[],
  deviceIds: number[],
  time: number,
  shares: Map<number, number>[],
): boolean {
  const base = costs.base[0]!;
  const weight = costs.weight[0]!;
  let slot = 0;
  let room = time - base;
  for (const head of heads) {
    const total = costs.kv[head]![0]!;
    let left = total;
    let first = true;
    while (first || left > total * 1e-12) {
      first = false;
      if (room - weight <= time * 1e-12 && (left > 0 || room < weight)) {
        slot += 1;
        room = time - base;
      }
      if (slot >= deviceIds.length) return false;
      const portion = Math.min(left, room - weight);
      if (portion < 0) return false;
      shares[head]!.set(deviceIds[slot]!, total > 0 ? portion / total : 1);
      room -= weight + portion;
      left -= portion;
    }
  }
  return true;
}

/**
 * Exact optimum of one layer on identical devices (see {@link GroupSolution}), with at most `maxCopies`
 * copies in the layer when given; null when the layer has more than {@link GROUP_BOUND_MAX_HEADS} heads or
 * the devices differ.
 */
export function solveLayerByGroups(
  costs: LayerCosts,
  maxReplicasPerHead: number,
  maxCopies = Number.POSITIVE_INFINITY,
): GroupSolution | null {
  const heads = costs.kv.length;
  const devices = costs.base.length;
  const identical =
    costs.base.every((value) => value === costs.base[0]) && costs.weight.every((value) => value === costs.weight[0]);
  if (heads > GROUP_BOUND_MAX_HEADS || !identical || costs.kv.some((row) => row.some((value) => value !== row[0])))
    return null;
  const base = costs.base[0]!;
  const weight = costs.weight[0]!;
  const loads = costs.kv.map((row) => row[0]!);
  const subsets = subsetSums(loads);
  const candidates: number[] = [];
  for (let mask = 1; mask < 1 << heads; mask++) {
    for (let d = 1; d <= Math.min(devices, maxCopies + 1); d++)
      candidates.push(base + (subsets.load[mask]! + weight * (subsets.count[mask]! + d - 1)) / d);
  }
  candidates.sort((a, b) => a - b);
  const coverAt = (time: number) =>
    Number.isFinite(maxCopies)
      ? coverWithCopies(subsets, heads, time, base, weight, devices, maxCopies)
      : cover(subsets, heads, time, base, weight, devices);
  let low = 0;
  let high = candidates.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (coverAt(candidates[middle]! * (1 + RELATIVE)).devicesUsed <= devices) high = middle;
    else low = middle + 1;
  }
  const optimum = candidates[low]!;
  const { groups } = coverAt(optimum * (1 + RELATIVE));
  const shares = Array.from({ length: heads }, () => new Map<number, number>());
  let nextDevice = 0;
  for (const [mask, count] of groups) {
    const members = loads.map((_, head) => head).filter((head) => mask & (1 << head));
    members.sort((a, b) => loads[b]! - loads[a]!);
    const deviceIds = Array.from({ length: count }, (_, index) => nextDevice + index);
    nextDevice += count;
    if (!wrapAround(costs, members, deviceIds, optimum * (1 + 1e-9), shares))
      return { lowerBound: optimum, shares: null };
  }
  const capped = shares.every((replicas) => replicas.size <= maxReplicasPerHead);
  return { lowerBound: optimum, shares: capped ? shares : null };
}
