import type { LayerPlacement } from '@fairkv/core';
import type { PlacementProblem } from '../placement-request.js';
import { layerCosts, toLayerPlacement } from '../solvers/layer-costs.js';
import { canonicalCosts, distinctLayers, fromCanonical } from './distinct-layers.js';
import { type GroupSolution, solveLayerByGroups } from './group-bound.js';

/**
 * Most copies the whole model can hold at `batch`: memory summed over devices is
 * `G x (non-head weights) + W x replicas + batch x (KV of every head)` whatever the placement (shares of a
 * head sum to 1), so total memory bounds the replica count. Every plan that fits obeys it.
 */
export function memoryCopyBudget(problem: PlacementProblem, batch: number): number {
  const usable = problem.usableMemoryBytes.reduce((sum, value) => sum + value, 0);
  const kv = problem.kvMemoryBytes.reduce((sum, row) => sum + row.reduce((rowSum, value) => rowSum + value, 0), 0);
  const fixed =
    problem.deviceCount * problem.baseWeightBytes + problem.layerCount * problem.kvHeadCount * problem.headWeightBytes;
  return Math.floor((usable - fixed - batch * kv) / problem.headWeightBytes);
}

/**
 * Exact multiple-choice knapsack: pick a copy count per layer (`curves[l][k]` = layer time with at most k
 * copies, non-increasing in k) minimising the total time with at most `budget` copies in all.
 */
export function allocateCopies(curves: number[][], budget: number): number[] {
  const cap = Math.min(
    budget,
    curves.reduce((sum, curve) => sum + curve.length - 1, 0),
  );
  let best = new Float64Array(cap + 1).fill(0);
  const picks: Int32Array[] = [];
  for (const curve of curves) {
    const next = new Float64Array(cap + 1).fill(Number.POSITIVE_INFINITY);
    const pick = new Int32Array(cap + 1);
    for (let spent = 0; spent <= cap; spent++) {
      for (let copies = 0; copies < curve.length && copies <= spent; copies++) {
        const value = best[spent - copies]! + curve[copies]!;
        if (value < next[spent]!) {
          next[spent] = value;
          pick[spent] = copies;
        }
      }
    }
    picks.push(pick);
    best = next;
  }
  const chosen = new Array<number>(curves.length).fill(0);
  let spent = cap;
  for (let layer = curves.length - 1; layer >= 0; layer--) {
    chosen[layer] = picks[layer]![spent]!;
    spent -= chosen[layer]!;
  }
  return chosen;
}

/** Layers chosen under a total copy budget, with each layer's time as a valid lower bound. */
export interface BudgetedLayers {
  layers: LayerPlacement[];
  /** Per layer: the exact optimum with its chosen copy count (the budgeted problem's optimum, summed). */
  lowerBounds: number[];
  /** Whether every chosen layer has a placement reaching its bound (the replica cap may forbid one). */
  reached: boolean;
}

/**
 * The exact optimum when the only coupling between layers is a total copy budget (the user's copyBudget,
 * or {@link memoryCopyBudget}): per distinct layer, the group bound with at most k copies for
 * k = 0..G-1 (a layer never needs more: some optimum is a forest), then {@link allocateCopies}.
 * Identical devices only; null otherwise. The returned function allocates any budget from the same curves.
 */
export function copyBudgetSolver(
  problem: PlacementProblem,
  batch: number,
): ((budget: number) => BudgetedLayers | null) | null {
  const { groups, orders } = distinctLayers(problem);
  const curveOf: GroupSolution[][] = [];
  const groupOf = new Array<number>(problem.layerCount);
  for (const [index, layers] of groups.entries()) {
    const first = layers[0]!;
    const costs = canonicalCosts(layerCosts(problem, first, batch), orders[first]!);
    const curve: GroupSolution[] = [];
    for (let copies = 0; copies < problem.deviceCount; copies++) {
      const solution = solveLayerByGroups(costs, problem.options.maxReplicasPerHead, copies);
      if (!solution) return null;
      curve.push(solution);
    }
    curveOf.push(curve);
    for (const layer of layers) groupOf[layer] = index;
  }
  const curves = groupOf.map((group) => curveOf[group]!.map((solution) => solution.lowerBound));
  return (budget) => {
    if (budget < 0) return null;
    const chosen = allocateCopies(curves, budget);
    const lowerBounds = chosen.map((copies, layer) => curves[layer]![copies]!);
    const layers: LayerPlacement[] = [];
    for (const [layer, copies] of chosen.entries()) {
      const shares = curveOf[groupOf[layer]!]![copies]!.shares;
      if (!shares) return { layers: [], lowerBounds, reached: false };
      layers.push(toLayerPlacement(fromCanonical(shares, orders[layer]!)));
    }
    return { layers, lowerBounds, reached: true };
  };
}
