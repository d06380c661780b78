/**
 * Running placement solvers for the CLI: `contiguous`, `greedy` and `fair-copy` from
 * @fairkv/placement and the exact `ilp` from @fairkv/placement/ilp (loaded only when asked for, so
 * the other solvers never load WASM).
 *
 * @packageDocumentation
 */
import type { Plan } from '@fairkv/core';
import {
  type PlacementPrediction,
  type PlacementRequest,
  type PlacementResult,
  solvePlacement,
} from '@fairkv/placement';

import type { CliSolverName } from './cli-names.js';

export { type CliSolverName, SOLVER_NAMES } from './cli-names.js';

/** One solver's outcome: a result, or the error it stopped with. */
export interface SolverOutcome {
  solver: CliSolverName;
  result?: PlacementResult;
  error?: unknown;
}

/**
 * Solves with one solver. `ilp` runs glpk.js in a worker thread and reports progress per distinct layer.
 * @throws the solver's error (ValidationError, CapacityError, UnsupportedError: exit 2).
 */
export async function runSolver(
  solver: CliSolverName,
  request: PlacementRequest,
  onIlpProgress?: (solved: number, total: number) => void,
): Promise<PlacementResult> {
  if (solver === 'ilp') {
    const { solveIlp } = await import('@fairkv/placement/ilp');
    return solveIlp({ ...request, ...(onIlpProgress ? { onProgress: onIlpProgress } : {}) });
  }
  return solvePlacement({ ...request, solver });
}

/** Runs each solver in turn, keeping going after one fails (its error is kept in the outcome). */
export async function runSolvers(
  solvers: readonly CliSolverName[],
  request: PlacementRequest,
  onIlpProgress?: (solved: number, total: number) => void,
): Promise<SolverOutcome[]> {
  const outcomes: SolverOutcome[] = [];
  for (const solver of solvers) {
    try {
      outcomes.push({ solver, result: await runSolver(solver, request, onIlpProgress) });
    } catch (error) {
      outcomes.push({ solver, error });
    }
  }
  return outcomes;
}

/** Highest predicted throughput among the outcomes that succeeded. */
export function bestOutcome(outcomes: readonly SolverOutcome[]): SolverOutcome | undefined {
  let best: SolverOutcome | undefined;
  for (const outcome of outcomes) {
    if (!outcome.result) continue;
    if (
      !best?.result ||
      outcome.result.predicted.throughputTokensPerSecond > best.result.predicted.throughputTokensPerSecond
    ) {
      best = outcome;
    }
  }
  return best;
}

/** Copies (replicas beyond one per head) in a plan. */
export function copyCount(plan: Plan): number {
  let copies = 0;
  for (const layer of plan.layers) for (const head of layer.heads) copies += head.replicas.length - 1;
  return copies;
}

/** max / mean of predicted device memory (1 = balanced). */
export function memoryBalance(predicted: PlacementPrediction): number {
  return predicted.memoryMeanBytes > 0 ? predicted.memoryMaxBytes / predicted.memoryMeanBytes : 1;
}
