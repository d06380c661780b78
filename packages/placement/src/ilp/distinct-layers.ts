import type { PlacementProblem } from '../placement-request.js';
import type { LayerCosts } from '../solvers/layer-costs.js';

/** Layers whose kv loads are a permutation of each other, solved once with heads sorted by load. */
export interface DistinctLayers {
  /** Groups of layer indices with the same sorted loads. */
  groups: number[][];
  /** Per layer: its heads by decreasing load (ties by index); rank r of the canonical layer is head orders[l][r]. */
  orders: number[][];
}

/** Groups a problem's layers by their sorted kv loads (DuoAttention profiles have few distinct layers). */
export function distinctLayers(problem: PlacementProblem): DistinctLayers {
  const groups = new Map<string, number[]>();
  const orders: number[][] = [];
  for (let layer = 0; layer < problem.layerCount; layer++) {
    const row = problem.kvReadBytes[layer]!;
    const order = row.map((_, head) => head).sort((a, b) => row[b]! - row[a]! || a - b);
    orders.push(order);
    const key = order.map((head) => row[head]).join(',');
    groups.set(key, [...(groups.get(key) ?? []), layer]);
  }
  return { groups: [...groups.values()], orders };
}

/** A layer's costs with heads in its canonical (decreasing load) order. */
export function canonicalCosts(full: LayerCosts, order: number[]): LayerCosts {
  return { base: full.base, weight: full.weight, kv: order.map((head) => full.kv[head]!) };
}

/** Maps canonical per-rank shares back to the layer's heads. */
export function fromCanonical(canonical: Map<number, number>[], order: number[]): Map<number, number>[] {
  const shares = new Array<Map<number, number>>(order.length);
  order.forEach((head, rank) => {
    shares[head] = canonical[rank]!;
  });
  return shares;
}
