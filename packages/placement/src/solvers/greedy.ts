import type { LayerPlacement } from '@fairkv/core';
import { maxBatchOf, stepSeconds } from '../cost-model.js';
import type { PlacementProblem } from '../placement-request.js';
import { contiguousDevice, contiguousLayer } from './contiguous.js';
import { argMax, type LayerCosts, layerCosts, toLayerPlacement } from './layer-costs.js';
import type { PlacementSolver } from './placement-solver.js';

const RELATIVE_TIE = 1e-9;

/** Cost of hosting head `head` whole on `device`: its weight slice plus its whole KV. */
function headCost(costs: LayerCosts, head: number, device: number): number {
  return costs.weight[device]! + costs.kv[head]![device]!;
}

function layerTimes(costs: LayerCosts, assignment: number[]): number[] {
  const times = [...costs.base];
  assignment.forEach((device, head) => {
    times[device]! += headCost(costs, head, device);
  });
  return times;
}

/**
 * Longest-processing-time list scheduling: heads by decreasing load, each to the device where it
 * finishes first; ties (within 1e-9 relative) go to the device with the least memory accumulated
 * over earlier layers, so memory balances too.
 */
function longestFirst(costs: LayerCosts, memory: readonly number[]): number[] {
  const headCount = costs.kv.length;
  const order = Array.from({ length: headCount }, (_, head) => head).sort(
    (a, b) => headCost(costs, b, 0) - headCost(costs, a, 0) || a - b,
  );
  const times = [...costs.base];
  const assignment = new Array<number>(headCount).fill(0);
  for (const head of order) {
    let best = -1;
    let bestFinish = Number.POSITIVE_INFINITY;
    for (let device = 0; device < times.length; device++) {
      const finish = times[device]! + headCost(costs, head, device);
      const tie = Math.abs(finish - bestFinish) <= RELATIVE_TIE * Math.max(finish, bestFinish);
      if (best < 0 || (!tie && finish < bestFinish) || (tie && memory[device]! < memory[best]!)) {
        best = device;
        bestFinish = finish;
      }
    }
    assignment[head] = best;
    times[best] = bestFinish;
  }
  return assignment;
}

/**
 * Local search on the slowest device: the best single move or pairwise swap of a whole head that
 * lowers max(slowest, partner); each accepted step lowers the sorted device-time vector
 * lexicographically, so it terminates.
 */
function improveBySwaps(costs: LayerCosts, assignment: number[]): void {
  const headCount = assignment.length;
  for (let round = 0; round < 4 * headCount * costs.base.length; round++) {
    const times = layerTimes(costs, assignment);
    const slowest = argMax(times);
    const limit = times[slowest]! * (1 - RELATIVE_TIE);
    let bestValue = limit;
    let bestMove: [number, number, number] | null = null;
    for (let head = 0; head < headCount; head++) {
      if (assignment[head] !== slowest) continue;
      for (let device = 0; device < times.length; device++) {
        if (device === slowest) continue;
        const moved = Math.max(
          times[slowest]! - headCost(costs, head, slowest),
          times[device]! + headCost(costs, head, device),
        );
        if (moved < bestValue) [bestValue, bestMove] = [moved, [head, device, -1]];
        for (let other = 0; other < headCount; other++) {
          if (assignment[other] !== device) continue;
          const swapped = Math.max(
            times[slowest]! - headCost(costs, head, slowest) + headCost(costs, other, slowest),
            times[device]! - headCost(costs, other, device) + headCost(costs, head, device),
          );
          if (swapped < bestValue) [bestValue, bestMove] = [swapped, [head, device, other]];
        }
      }
    }
    if (!bestMove) return;
    const [head, device, other] = bestMove;
    assignment[head] = device;
    if (other >= 0) assignment[other] = slowest;
  }
}

/** Greedy placement of one layer given the memory each device has accumulated (bytes). */
export function greedyLayer(
  problem: PlacementProblem,
  layerIndex: number,
  batch: number,
  memory: readonly number[],
): number[] {
  const costs = layerCosts(problem, layerIndex, batch);
  const assignment = longestFirst(costs, memory);
  improveBySwaps(costs, assignment);
  if (problem.deviceCount <= problem.kvHeadCount) {
    const contiguous = assignment.map((_, head) => contiguousDevice(head, problem.kvHeadCount, problem.deviceCount));
    if (Math.max(...layerTimes(costs, contiguous)) < Math.max(...layerTimes(costs, assignment))) return contiguous;
  }
  return assignment;
}

/** Runs {@link greedyLayer} over every layer, carrying memory (weights + KV at `batch`) from layer to layer. */
export function greedyLayers(problem: PlacementProblem, batch: number): LayerPlacement[] {
  const memory = new Array<number>(problem.deviceCount).fill(problem.baseWeightBytes);
  const layers: LayerPlacement[] = [];
  for (let layerIndex = 0; layerIndex < problem.layerCount; layerIndex++) {
    const assignment = greedyLayer(problem, layerIndex, batch, memory);
    assignment.forEach((device, head) => {
      memory[device]! += problem.headWeightBytes + batch * problem.kvMemoryBytes[layerIndex]![head]!;
    });
    layers.push(toLayerPlacement(assignment.map((device) => new Map([[device, 1]]))));
  }
  return layers;
}

/**
 * `greedy`: FairKV's best-effort assignment without copies (arXiv 2502.15804, section 4.1): per
 * layer, heads by decreasing load to the least loaded device, ties broken by memory accumulated
 * over layers; then whole-head moves and swaps off the slowest device, and the contiguous layout
 * where it is better, so greedy is never slower than standard TP (at `batch: 'max'`: never lower throughput).
 */
export const greedySolver: PlacementSolver = {
  name: 'greedy',
  description: 'best-effort assignment without copies: heaviest head to the least loaded device, then swaps',
  copies: false,
  solve(problem, target) {
    const layers = greedyLayers(problem, target.batch);
    if (problem.request.batch !== 'max' || problem.deviceCount > problem.kvHeadCount) return { layers, warnings: [] };
    // at the largest batch, keep standard TP when it fits enough more requests to be faster overall
    const contiguous = Array.from({ length: problem.layerCount }, () =>
      contiguousLayer(problem.kvHeadCount, problem.deviceCount),
    );
    const throughput = (candidate: LayerPlacement[]) => {
      const batch = maxBatchOf(problem, candidate);
      return batch >= 1 ? batch / stepSeconds(problem, candidate, batch) : 0;
    };
    return { layers: throughput(contiguous) > throughput(layers) ? contiguous : layers, warnings: [] };
  },
};
