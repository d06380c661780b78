import type { LayerPlacement } from '@fairkv/core';
import type { PlacementProblem } from '../placement-request.js';

/** Names of the solvers in the main entry (`ilp` lives in `@fairkv/placement/ilp`). */
export type SolverName = 'contiguous' | 'greedy' | 'fair-copy';

/** The batch a solver balances for and the batch whose memory must fit. */
export interface SolveTarget {
  /** Batch the step time is minimised at. */
  batch: number;
  /** Batch at which every device must stay within its usable memory; 0 checks nothing. */
  memoryBatch: number;
  /** Placement to start from (fair-copy starts from greedy's when absent). */
  start?: LayerPlacement[];
}

/** What a solver returns: one placement per layer, and anything the caller should know. */
export interface SolverOutput {
  layers: LayerPlacement[];
  warnings: string[];
}

/**
 * A placement solver (FairKV, arXiv 2502.15804, section 4): maps every (layer, kv head) to devices,
 * with replica shares. Solvers are pure and synchronous; the cost model scores what they return.
 */
export interface PlacementSolver {
  name: SolverName;
  /** One line for `--help` and docs. */
  description: string;
  /** Whether the solver creates Fair-Copying replicas. */
  copies: boolean;
  solve(problem: PlacementProblem, target: SolveTarget): SolverOutput;
}
