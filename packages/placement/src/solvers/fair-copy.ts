import type { LayerPlacement } from '@fairkv/core';
import { deviceMemoryTerms, maxBatchOf, stepSeconds } from '../cost-model.js';
import type { PlacementProblem } from '../placement-request.js';
import { greedyLayers } from './greedy.js';
import { argMax, deviceTimes, fromLayerPlacement, layerCosts, toLayerPlacement } from './layer-costs.js';
import type { PlacementSolver, SolverOutput, SolveTarget } from './placement-solver.js';
import { balanceMemoryByRelabeling } from './relabel-devices.js';

const IMPROVEMENT = 1e-9;
const SHARE_EPSILON = 1e-12;

/** A state a layer passed through: its slowest device's time, its copies and its placement. */
interface LayerState {
  maxSeconds: number;
  copies: number;
  layer: LayerPlacement;
}

interface LayerRun {
  /** Best state for each copy count reached (index = copies), or undefined. */
  bestByCopies: (LayerState | undefined)[];
}

function copiesOf(shares: Map<number, number>[]): number {
  return shares.reduce((sum, replicas) => sum + replicas.size - 1, 0);
}

/**
 * Fair-Copying on one layer (arXiv 2502.15804, section 4.2): repeatedly take a head off the slowest
 * device and give part of its share to another device so both level (a copy pays its weight slice
 * there), or move the whole replica when that levels better. Records the best state per copy count.
 * `memoryRoom[g]` is what device g may still add (bytes, at the memory batch); Infinity when unchecked.
 */
function levelLayer(
  problem: PlacementProblem,
  layerIndex: number,
  batch: number,
  memoryBatch: number,
  start: LayerPlacement,
  memoryRoom: number[],
): LayerRun {
  const costs = layerCosts(problem, layerIndex, batch);
  const shares = fromLayerPlacement(start, problem.kvHeadCount);
  const maxReplicas = problem.options.maxReplicasPerHead;
  const memoryRow = problem.kvMemoryBytes[layerIndex]!;
  const room = [...memoryRoom];
  const times = deviceTimes(costs, shares);
  const initial: LayerState = {
    maxSeconds: Math.max(...times),
    copies: copiesOf(shares),
    layer: toLayerPlacement(shares),
  };
  const bestByCopies: (LayerState | undefined)[] = [];
  bestByCopies[initial.copies] = initial;
  let bestMax = initial.maxSeconds;
  const devices = problem.deviceCount;
  for (let step = 0; step < 8 * problem.kvHeadCount * devices; step++) {
    const from = argMax(times);
    const limit = times[from]! * (1 - IMPROVEMENT);
    let best: { value: number; head: number; to: number; amount: number; newCopy: boolean } | null = null;
    shares.forEach((replicas, head) => {
      const share = replicas.get(from);
      if (share === undefined) return;
      const kvFrom = costs.kv[head]![from]!;
      for (let to = 0; to < devices; to++) {
        if (to === from) continue;
        const hosted = replicas.has(to);
        const addWeight = hosted ? 0 : costs.weight[to]!;
        const kvTo = costs.kv[head]![to]!;
        let amount = kvFrom + kvTo > 0 ? (times[from]! - times[to]! - addWeight) / (kvFrom + kvTo) : 0;
        if (amount <= 0) continue;
        const whole = amount >= share - SHARE_EPSILON;
        if (whole) amount = share;
        const newCopy = !hosted && !whole;
        if (newCopy && replicas.size >= maxReplicas) continue;
        const addedMemory = (hosted ? 0 : problem.headWeightBytes) + amount * memoryBatch * memoryRow[head]!;
        if (addedMemory > room[to]!) continue;
        const fromAfter = times[from]! - amount * kvFrom - (whole ? costs.weight[from]! : 0);
        const toAfter = times[to]! + addWeight + amount * kvTo;
        const value = Math.max(fromAfter, toAfter);
        if (
          value < limit &&
          (!best || value < best.value * (1 - IMPROVEMENT) || (value <= best.value && !newCopy && best.newCopy))
        ) {
          best = { value, head, to, amount, newCopy };
        }
      }
    });
    if (!best) break;
    const { head, to, amount } = best as { head: number; to: number; amount: number };
    const replicas = shares[head]!;
    const fromShare = replicas.get(from)! - amount;
    const hostedBefore = replicas.has(to);
    replicas.set(to, (replicas.get(to) ?? 0) + amount);
    const memoryMoved = amount * memoryBatch * memoryRow[head]!;
    room[to]! -= memoryMoved + (hostedBefore ? 0 : problem.headWeightBytes);
    room[from]! += memoryMoved;
    if (fromShare <= SHARE_EPSILON) {
      replicas.delete(from);
      room[from]! += problem.headWeightBytes;
    } else replicas.set(from, fromShare);
    const updated = deviceTimes(costs, shares);
    for (let device = 0; device < devices; device++) times[device] = updated[device]!;
    const maxSeconds = Math.max(...times);
    const copies = copiesOf(shares);
    const known = bestByCopies[copies];
    if (maxSeconds < bestMax * (1 - IMPROVEMENT) && (!known || maxSeconds < known.maxSeconds)) {
      bestMax = maxSeconds;
      bestByCopies[copies] = { maxSeconds, copies, layer: toLayerPlacement(shares) };
    }
  }
  return { bestByCopies };
}

/** Index (copy count) of the best state of a run: lowest max time, then fewest copies. */
function bestIndex(run: LayerRun, maxCopies = Number.POSITIVE_INFINITY): number {
  let best = -1;
  run.bestByCopies.forEach((state, copies) => {
    if (!state || copies > maxCopies) return;
    if (best < 0 || state.maxSeconds < run.bestByCopies[best]!.maxSeconds) best = copies;
  });
  return best;
}

/**
 * Spends a finite copy budget over layers: repeatedly takes the layer step (to any later state)
 * with the largest time saved per extra copy.
 */
function allocateBudget(runs: LayerRun[], budget: number): number[] {
  const chosen = runs.map((run) => run.bestByCopies.findIndex(Boolean));
  let spent = chosen.reduce((sum, copies) => sum + copies, 0);
  for (;;) {
    let bestRatio = 0;
    let bestMove = null as [number, number] | null;
    runs.forEach((run, layer) => {
      const current = run.bestByCopies[chosen[layer]!]!;
      run.bestByCopies.forEach((state, copies) => {
        const extra = copies - chosen[layer]!;
        if (!state || extra <= 0 || spent + extra > budget) return;
        const ratio = (current.maxSeconds - state.maxSeconds) / extra;
        if (ratio > bestRatio) [bestRatio, bestMove] = [ratio, [layer, copies]];
      });
    });
    if (!bestMove) return chosen;
    const [layer, copies] = bestMove;
    spent += copies - chosen[layer]!;
    chosen[layer] = copies;
  }
}

/** Fair-Copying over every layer from `start` (greedy's plan when absent). */
export function levelLayers(
  problem: PlacementProblem,
  target: SolveTarget,
): { layers: LayerPlacement[]; warnings: string[] } {
  const start = target.start ?? greedyLayers(problem, target.batch);
  const warnings: string[] = [];
  const { weightBytes, kvBytesPerRequest } = deviceMemoryTerms(problem, start);
  const room = problem.usableMemoryBytes.map((usable, device) =>
    target.memoryBatch > 0
      ? usable - weightBytes[device]! - target.memoryBatch * kvBytesPerRequest[device]!
      : Number.POSITIVE_INFINITY,
  );
  if (room.some((value) => value < 0)) {
    warnings.push(`fair-copy: the starting placement does not fit batch ${target.memoryBatch}; no copy was added`);
    return { layers: start, warnings };
  }
  const runs: LayerRun[] = [];
  const chosenLayers: LayerPlacement[] = [];
  start.forEach((layer, layerIndex) => {
    const run = levelLayer(problem, layerIndex, target.batch, target.memoryBatch, layer, room);
    runs.push(run);
    const chosen = run.bestByCopies[bestIndex(run)]!.layer;
    chosenLayers.push(chosen);
    if (target.memoryBatch > 0) {
      const before = deviceMemoryTerms(problem, [layer]);
      const after = deviceMemoryTerms(problem, [chosen]);
      for (let device = 0; device < problem.deviceCount; device++) {
        room[device]! -=
          after.weightBytes[device]! -
          before.weightBytes[device]! +
          target.memoryBatch * (after.kvBytesPerRequest[device]! - before.kvBytesPerRequest[device]!);
      }
    }
  });
  if (Number.isFinite(problem.options.copyBudget)) {
    const startCopies = runs.reduce((sum, run) => sum + run.bestByCopies.findIndex(Boolean), 0);
    if (startCopies > problem.options.copyBudget) {
      warnings.push(
        `fair-copy: the starting placement already has ${startCopies} copies, over copyBudget ${problem.options.copyBudget}`,
      );
      return { layers: start, warnings };
    }
    const counts = allocateBudget(runs, problem.options.copyBudget);
    counts.forEach((copies, layer) => {
      chosenLayers[layer] = runs[layer]!.bestByCopies[copies]!.layer;
    });
    if (target.memoryBatch > 0) revertUntilFits(problem, chosenLayers, start, target.memoryBatch, warnings);
  }
  return { layers: chosenLayers, warnings };
}

/** After budget allocation, memory may shift: revert layers to the start until every device fits. */
function revertUntilFits(
  problem: PlacementProblem,
  layers: LayerPlacement[],
  start: LayerPlacement[],
  batch: number,
  warnings: string[],
): void {
  for (let layer = layers.length - 1; layer >= 0; layer--) {
    const { weightBytes, kvBytesPerRequest } = deviceMemoryTerms(problem, layers);
    const fits = weightBytes.every(
      (weights, device) => weights + batch * kvBytesPerRequest[device]! <= problem.usableMemoryBytes[device]!,
    );
    if (fits) return;
    if (layers[layer] !== start[layer]) {
      layers[layer] = start[layer]!;
      warnings.push(`fair-copy: layer ${layer} reverted to its starting placement to fit memory at batch ${batch}`);
    }
  }
}

/** Tokens per second of layers at the largest batch they fit (0 when nothing fits). */
function throughputAtMaxBatch(problem: PlacementProblem, layers: LayerPlacement[]): number {
  const batch = maxBatchOf(problem, layers);
  return batch >= 1 ? batch / stepSeconds(problem, layers, batch) : 0;
}

/**
 * Fair-Copying for a fixed batch, or for `batch: 'max'`: there the candidates are the start, levelling
 * within the memory the start leaves, and twice unconstrained levelling followed by memory balancing
 * (re-levelled at the batch the previous round fits); the one with the highest throughput at its own
 * largest batch wins, so fair-copy never does worse than its start.
 */
export function fairCopyLayers(problem: PlacementProblem, target: SolveTarget): SolverOutput {
  if (problem.request.batch !== 'max') return levelLayers(problem, target);
  const start = target.start ?? greedyLayers(problem, target.batch);
  const candidates: SolverOutput[] = [{ layers: start, warnings: [] }, levelLayers(problem, { ...target, start })];
  let batch = target.batch;
  for (let round = 0; round < 2; round++) {
    const free = levelLayers(problem, { batch, memoryBatch: 0, start });
    const layers = balanceMemoryByRelabeling(problem, free.layers, batch);
    candidates.push({ layers, warnings: free.warnings });
    batch = Math.max(1, maxBatchOf(problem, layers));
  }
  const scored = candidates.map((candidate) => ({
    candidate,
    throughput: throughputAtMaxBatch(problem, candidate.layers),
  }));
  return scored.reduce((best, next) => (next.throughput > best.throughput ? next : best)).candidate;
}

/**
 * `fair-copy`: FairKV's Fair-Copying (arXiv 2502.15804, section 4.2). Starts from greedy, then
 * copies heads from the slowest device to others, splitting the head's requests so both devices
 * level, while the predicted step time improves and the per-head and total copy budgets and memory
 * allow. A copy pays its weight slice in time and memory.
 */
export const fairCopySolver: PlacementSolver = {
  name: 'fair-copy',
  description: 'greedy plus Fair-Copying: heavy heads replicated with split request shares to level devices',
  copies: true,
  solve(problem, target) {
    return fairCopyLayers(problem, target);
  },
};
