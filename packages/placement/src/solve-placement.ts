import { assertValidPlan, CapacityError, type LayerPlacement, type Plan, ValidationError } from '@fairkv/core';
import { deviceMemoryTerms, maxBatchOf, type PlacementPrediction, predictLayers } from './cost-model.js';
import { type PlacementProblem, type PlacementRequest, resolvePlacementProblem } from './placement-request.js';
import { contiguousSolver } from './solvers/contiguous.js';
import { fairCopySolver } from './solvers/fair-copy.js';
import { greedySolver } from './solvers/greedy.js';
import type { PlacementSolver, SolverName, SolveTarget } from './solvers/placement-solver.js';

/** The solvers of the main entry, as data (`ilp` is in `@fairkv/placement/ilp`). */
export const SOLVERS: Readonly<Record<SolverName, PlacementSolver>> = {
  contiguous: contiguousSolver,
  greedy: greedySolver,
  'fair-copy': fairCopySolver,
};

/** A plan whose `predicted` is the full cost-model prediction. */
export interface PlacementPlan extends Plan {
  predicted: PlacementPrediction;
}

/** What a solver run returns. */
export interface PlacementResult {
  /** The core plan document (validated), with model, cluster, batch and context recorded beside it. */
  plan: PlacementPlan;
  /** Same object as `plan.predicted`. */
  predicted: PlacementPrediction;
  /** Wall-clock seconds the solver took. */
  solveSeconds: number;
  /** Whether the plan is proven optimal for the cost model (only `ilp` can prove it). */
  optimal: boolean;
  /** Relative gap to the best proven lower bound of the step time, when the solver has one. */
  gap?: number;
  warnings: string[];
}

/** A request plus the solver to run. */
export interface SolvePlacementRequest extends PlacementRequest {
  solver: SolverName;
}

/**
 * Upper bound on any plan's batch: all usable memory minus every weight held once, over the KV one
 * request adds across the model. Solvers balance for it when `batch` is `max`.
 */
export function idealBatch(problem: PlacementProblem): number {
  const usable = problem.usableMemoryBytes.reduce((sum, value) => sum + value, 0);
  const weights =
    problem.deviceCount * problem.baseWeightBytes + problem.layerCount * problem.kvHeadCount * problem.headWeightBytes;
  const kv = problem.kvMemoryBytes.reduce((sum, row) => sum + row.reduce((rowSum, value) => rowSum + value, 0), 0);
  return Math.max(1, kv > 0 ? Math.floor((usable - weights) / kv) : 1);
}

/**
 * The target a solver runs at. Fixed batch: that batch, memory checked at it. `max`: greedy balances
 * for {@link idealBatch}; fair-copy starts from that greedy plan and keeps fitting the batch it fits.
 */
export function solveTarget(problem: PlacementProblem, solver: SolverName): SolveTarget {
  const { batch } = problem.request;
  if (batch !== 'max') return { batch, memoryBatch: batch };
  const ideal = idealBatch(problem);
  if (solver !== 'fair-copy') return { batch: ideal, memoryBatch: 0 };
  const start = greedySolver.solve(problem, { batch: ideal, memoryBatch: 0 }).layers;
  const fitted = maxBatchOf(problem, start);
  return fitted >= 1 ? { batch: fitted, memoryBatch: fitted, start } : { batch: ideal, memoryBatch: 0, start };
}

/** @throws CapacityError naming the device that overflows most and its shortfall at `batch`. */
export function assertFits(problem: PlacementProblem, layers: LayerPlacement[], batch: number, solver: string): void {
  const { weightBytes, kvBytesPerRequest } = deviceMemoryTerms(problem, layers);
  let worst = -1;
  let shortfall = 0;
  weightBytes.forEach((weights, device) => {
    const over = weights + batch * kvBytesPerRequest[device]! - problem.usableMemoryBytes[device]!;
    if (over > shortfall) [worst, shortfall] = [device, over];
  });
  if (worst < 0) return;
  const device = problem.cluster.devices[worst]!;
  const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;
  throw new CapacityError(
    `${solver}: ${problem.model.name} at batch ${batch} does not fit device ${worst} (${device.name}): needs ` +
      `${gb(weightBytes[worst]! + batch * kvBytesPerRequest[worst]!)} (weights ${gb(weightBytes[worst]!)}) but ` +
      `${gb(problem.usableMemoryBytes[worst]!)} is usable (${problem.options.memoryUtilization} x ${gb(device.memoryBytes)}): ` +
      `short by ${gb(shortfall)}; use more devices, a smaller batch or a lower-precision dtype`,
    { device: worst, shortfallBytes: shortfall },
  );
}

/**
 * Scores layers with the cost model, builds and validates the core plan document, and checks memory.
 * Shared by every solver, `ilp` included.
 * @throws CapacityError when the plan does not fit at its batch (or not even one request, for `max`).
 */
export function finishPlan(problem: PlacementProblem, solver: string, layers: LayerPlacement[]): PlacementPlan {
  const requested = problem.request.batch;
  const batch = requested === 'max' ? Math.max(1, maxBatchOf(problem, layers)) : requested;
  assertFits(problem, layers, batch, solver);
  const predicted = predictLayers(problem, layers, batch);
  const plan: PlacementPlan = {
    version: 1,
    solver,
    deviceCount: problem.deviceCount,
    layers,
    predicted,
    model: problem.model.name,
    cluster: problem.cluster.name,
    batch: requested,
    contextLength: problem.contextLength,
    dtype: problem.dtype,
    profileSource: problem.request.profile.source,
  };
  assertValidPlan(plan, { model: problem.model, cluster: problem.cluster });
  return plan;
}

/**
 * Solves a FairKV placement (arXiv 2502.15804) with `contiguous`, `greedy` or `fair-copy` and scores
 * it with the cost model (docs/cost-model.md). For the exact ILP use `solveIlp` from
 * `@fairkv/placement/ilp`, which returns the same shape.
 * @throws ValidationError naming a bad field or option; CapacityError naming the device and shortfall;
 * UnsupportedError for `contiguous` with more devices than kv heads.
 */
export function solvePlacement(request: SolvePlacementRequest): PlacementResult {
  const solver = SOLVERS[request.solver as SolverName];
  if (!solver || !Object.hasOwn(SOLVERS, request.solver)) {
    throw new ValidationError(
      `solver: expected one of ${Object.keys(SOLVERS).join(', ')} (ilp: import solveIlp from @fairkv/placement/ilp), got ${JSON.stringify(request.solver)}`,
      [{ path: '$.solver', message: `unknown solver ${JSON.stringify(request.solver)}` }],
    );
  }
  const started = performance.now();
  const problem = resolvePlacementProblem(request);
  const output = solver.solve(problem, solveTarget(problem, solver.name));
  const solveSeconds = (performance.now() - started) / 1000;
  const plan = finishPlan(problem, solver.name, output.layers);
  return {
    plan,
    predicted: plan.predicted,
    solveSeconds,
    optimal: false,
    warnings: [...problem.warnings, ...output.warnings],
  };
}

/**
 * The cost model applied to any plan (e.g. one read from disk by `fairkv inspect plan`), at the
 * request's batch or, for `max`, at the largest batch the plan fits. Does not throw when memory
 * overflows: see `fits`.
 * @throws ValidationError when the plan does not match the model or cluster.
 */
export function predictPlan(plan: Plan, request: PlacementRequest): PlacementPrediction {
  const problem = resolvePlacementProblem(request);
  const checked = {
    ...plan,
    predicted: { ...plan.predicted, devices: problem.cluster.devices.map(() => ({ memoryBytes: 0, kvBytes: 0 })) },
  };
  assertValidPlan(checked, { model: problem.model });
  if (plan.deviceCount !== problem.deviceCount) {
    throw new ValidationError(
      `plan has ${plan.deviceCount} devices but cluster ${problem.cluster.name} has ${problem.deviceCount}`,
      [
        {
          path: '$.deviceCount',
          message: `expected ${problem.deviceCount} (the cluster's devices), got ${plan.deviceCount}`,
        },
      ],
    );
  }
  const batch = request.batch === 'max' ? Math.max(1, maxBatchOf(problem, plan.layers)) : request.batch;
  return predictLayers(problem, plan.layers, batch);
}
