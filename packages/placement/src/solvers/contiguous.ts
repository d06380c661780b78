import { type LayerPlacement, UnsupportedError } from '@fairkv/core';
import type { PlacementProblem } from '../placement-request.js';
import type { PlacementSolver } from './placement-solver.js';

/** Device of kv head `kvHead` under standard tensor parallelism: `floor(kvHead * G / H)`. */
export function contiguousDevice(kvHead: number, kvHeadCount: number, deviceCount: number): number {
  return Math.floor((kvHead * deviceCount) / kvHeadCount);
}

/** The standard-TP layer placement: contiguous blocks of kv heads, one replica each. */
export function contiguousLayer(kvHeadCount: number, deviceCount: number): LayerPlacement {
  return {
    heads: Array.from({ length: kvHeadCount }, (_, kvHead) => ({
      kvHead,
      replicas: [{ device: contiguousDevice(kvHead, kvHeadCount, deviceCount), share: 1 }],
    })),
  };
}

/** @throws UnsupportedError when there are more devices than kv heads, pointing to fair-copy. */
export function assertContiguousPossible(problem: PlacementProblem): void {
  if (problem.deviceCount > problem.kvHeadCount) {
    throw new UnsupportedError(
      `solver contiguous: ${problem.deviceCount} devices but ${problem.model.name} has ${problem.kvHeadCount} kv heads per layer; ` +
        'standard TP needs deviceCount <= kvHeadCount (duplicating a kv head per rank, as vLLM does, is not modelled): use solver "fair-copy"',
    );
  }
}

/**
 * `contiguous`: standard tensor parallelism (Megatron-LM / vLLM), the FairKV paper's baseline:
 * kv head h of every layer on device floor(h * G / H), one replica with share 1.
 */
export const contiguousSolver: PlacementSolver = {
  name: 'contiguous',
  description: 'standard tensor parallelism: kv head h on device floor(h*G/H), the baseline',
  copies: false,
  solve(problem) {
    assertContiguousPossible(problem);
    const layer = contiguousLayer(problem.kvHeadCount, problem.deviceCount);
    return { layers: Array.from({ length: problem.layerCount }, () => structuredClone(layer)), warnings: [] };
  },
};
