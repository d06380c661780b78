import type { PlacementProblem } from '../placement-request.js';

/**
 * Brute-force optimum of one layer, independent of the group bound and of glpk: every choice of a
 * non-empty device set per head (at most `maxReplicas` devices, at most `copyBudget` extra replicas in
 * all); for a fixed choice the best shares follow from Hall's condition on the head -> device flow:
 * time = overhead + max over device sets D of (KV of heads hosted only inside D + fixed bytes of D) / bandwidth of D.
 */
export function bruteForceLayerSeconds(
  problem: PlacementProblem,
  layer: number,
  batch: number,
  maxReplicas: number,
  copyBudget: number,
): number {
  const devices = problem.deviceCount;
  const heads = problem.kvHeadCount;
  const loads = problem.kvReadBytes[layer]!.map((bytes) => batch * bytes);
  const choices: number[] = [];
  for (let mask = 1; mask < 1 << devices; mask++) {
    let size = 0;
    for (let bits = mask; bits; bits &= bits - 1) size++;
    if (size <= maxReplicas) choices.push(mask);
  }
  const sizeOf = (mask: number) => {
    let size = 0;
    for (let bits = mask; bits; bits &= bits - 1) size++;
    return size;
  };
  const hosts = new Array<number>(heads).fill(0);
  let best = Number.POSITIVE_INFINITY;
  const visit = (head: number, copies: number) => {
    if (copies > copyBudget) return;
    if (head === heads) {
      let worst = 0;
      for (let set = 1; set < 1 << devices; set++) {
        let bytes = 0;
        let bandwidth = 0;
        for (let device = 0; device < devices; device++) {
          if (!(set & (1 << device))) continue;
          bandwidth += problem.bandwidth[device]!;
          bytes += problem.layerBaseBytes;
          for (let h = 0; h < heads; h++) if (hosts[h]! & (1 << device)) bytes += problem.headWeightBytes;
        }
        for (let h = 0; h < heads; h++) if ((hosts[h]! & set) === hosts[h]) bytes += loads[h]!;
        worst = Math.max(worst, bytes / bandwidth);
      }
      best = Math.min(best, worst);
      return;
    }
    for (const mask of choices) {
      hosts[head] = mask;
      visit(head + 1, copies + sizeOf(mask) - 1);
    }
  };
  visit(0, 0);
  return best + problem.options.layerOverheadSeconds;
}
