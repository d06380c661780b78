import type { LayerPlacement } from '@fairkv/core';
import { deviceMemoryTerms, layerDeviceSeconds } from '../cost-model.js';
import type { PlacementProblem } from '../placement-request.js';

/** How far layers are from fitting: relative memory overflow summed over devices plus relative excess copies. */
function violation(problem: PlacementProblem, weights: number[], kv: number[], copies: number, batch: number): number {
  let total = 0;
  weights.forEach((weight, device) => {
    const usable = problem.usableMemoryBytes[device]!;
    total += Math.max(0, weight + batch * kv[device]! - usable) / usable;
  });
  const budget = problem.options.copyBudget;
  if (Number.isFinite(budget)) total += Math.max(0, copies - budget) / Math.max(1, budget);
  return total;
}

function layerTerms(problem: PlacementProblem, layer: LayerPlacement, layerIndex: number) {
  const weights = new Array<number>(problem.deviceCount).fill(0);
  const kv = new Array<number>(problem.deviceCount).fill(0);
  let copies = 0;
  for (const head of layer.heads) {
    copies += head.replicas.length - 1;
    for (const replica of head.replicas) {
      weights[replica.device]! += problem.headWeightBytes;
      kv[replica.device]! += replica.share * problem.kvMemoryBytes[layerIndex]![head.kvHead]!;
    }
  }
  return { weights, kv, copies };
}

/**
 * When the per-layer optima do not fit memory (or exceed the copy budget) together, swaps layers back
 * to a fallback plan that fits (fair-copy's), each time the layer that removes the most violation per
 * second of layer time lost, until everything fits. Returns null if even all-fallback does not fit.
 */
export function repairToFit(
  problem: PlacementProblem,
  layers: LayerPlacement[],
  fallback: LayerPlacement[],
  batch: number,
): LayerPlacement[] | null {
  const current = [...layers];
  const { weightBytes, kvBytesPerRequest } = deviceMemoryTerms(problem, current);
  let copies = current.reduce(
    (sum, layer) => sum + layer.heads.reduce((h, head) => h + head.replicas.length - 1, 0),
    0,
  );
  const time = (layer: LayerPlacement, index: number) => Math.max(...layerDeviceSeconds(problem, layer, index, batch));
  let remaining = violation(problem, weightBytes, kvBytesPerRequest, copies, batch);
  while (remaining > 0) {
    let best = -1;
    let bestScore = 0;
    let bestViolation = remaining;
    current.forEach((layer, index) => {
      if (layer === fallback[index]) return;
      const from = layerTerms(problem, layer, index);
      const to = layerTerms(problem, fallback[index]!, index);
      const weights = weightBytes.map((value, device) => value - from.weights[device]! + to.weights[device]!);
      const kv = kvBytesPerRequest.map((value, device) => value - from.kv[device]! + to.kv[device]!);
      const after = violation(problem, weights, kv, copies - from.copies + to.copies, batch);
      const gain = remaining - after;
      if (gain <= 0) return;
      const score = gain / Math.max(1e-15, time(fallback[index]!, index) - time(layer, index));
      if (score > bestScore) [best, bestScore, bestViolation] = [index, score, after];
    });
    if (best < 0) return null;
    const from = layerTerms(problem, current[best]!, best);
    const to = layerTerms(problem, fallback[best]!, best);
    for (let device = 0; device < problem.deviceCount; device++) {
      weightBytes[device]! += to.weights[device]! - from.weights[device]!;
      kvBytesPerRequest[device]! += to.kv[device]! - from.kv[device]!;
    }
    copies += to.copies - from.copies;
    current[best] = fallback[best]!;
    remaining = bestViolation;
  }
  return current;
}
