import { CancelledError, type LayerPlacement } from '@fairkv/core';
import { deviceMemoryTerms, layerDeviceSeconds, maxBatchOf, stepSeconds } from '../cost-model.js';
import { type PlacementProblem, type PlacementRequest, resolvePlacementProblem } from '../placement-request.js';
import { assertFits, finishPlan, type PlacementResult, solveTarget } from '../solve-placement.js';
import { fairCopySolver } from '../solvers/fair-copy.js';
import { deviceTimes, type LayerCosts, layerCosts, toLayerPlacement } from '../solvers/layer-costs.js';
import { balanceMemoryByRelabeling, identicalDeviceGroups } from '../solvers/relabel-devices.js';
import { copyBudgetSolver, memoryCopyBudget } from './copy-budget.js';
import { canonicalCosts, distinctLayers, fromCanonical } from './distinct-layers.js';
import type { GlpkRunner } from './glpk-runner.js';
import { solveLayerByGroups } from './group-bound.js';
import { solveLayerByDeviceClasses } from './group-bound-classes.js';
import { buildIlpModel, GLP_FEAS, GLP_OPT, type IlpLayer, objectiveSeconds, readLayerShares } from './ilp-model.js';
import { LazyRunner } from './lazy-glpk-runner.js';
import { repairToFit } from './repair-to-fit.js';

/** A request for {@link solveIlp}: the same as `solvePlacement`'s, plus cancellation and progress. */
export interface SolveIlpRequest extends PlacementRequest {
  /** Aborting terminates the worker and rejects with CancelledError. */
  signal?: AbortSignal;
  /** Called after each distinct layer (and the coupled model, if needed). */
  onProgress?: (solved: number, total: number) => void;
  /**
   * `auto` (default): layers on identical devices are solved exactly by the group bound (group-bound.ts)
   * and the glpk.js MILP takes the rest; `milp`: every layer goes through the glpk.js MILP.
   */
  method?: 'auto' | 'milp';
}

/** What {@link solveIlp} returns: `solvePlacement`'s shape plus how the ILP went. */
export interface IlpResult extends PlacementResult {
  /** Relative gap of the layer part of the step time at `solveBatch` to its proven lower bound (0 when optimal). */
  gap: number;
  /** Batch the MILPs balanced for and fitted (the request's, or fair-copy's largest batch for `max`). */
  solveBatch: number;
  /** Proven lower bound on the step time at `solveBatch`, seconds. */
  lowerBoundSeconds: number;
  /** Where glpk.js ran: a worker thread, the calling thread (see warnings for why), or nowhere (no MILP needed). */
  mode: 'worker' | 'in-thread' | 'none';
  /** Whether memory or the copy budget bound across layers, so one coupled MILP was solved. */
  coupled: boolean;
  /** Distinct layers solved (layers whose loads are a permutation of each other share one) plus the coupled model. */
  modelCount: number;
  /** How many distinct layers were proven by the group bound and how many went to the glpk.js MILP. */
  layerProofs: { groupBound: number; milp: number };
}

/** The group bound (exact layer optimum): the fast form on identical devices, the per-class DP otherwise. */
function exactLayer(problem: PlacementProblem, costs: LayerCosts, loads: number[]) {
  if (identicalDevices(problem)) return solveLayerByGroups(costs, problem.options.maxReplicasPerHead);
  return solveLayerByDeviceClasses(
    {
      loads,
      weightBytes: problem.headWeightBytes,
      baseBytes: problem.layerBaseBytes,
      overheadSeconds: problem.options.layerOverheadSeconds,
      bandwidth: problem.bandwidth,
    },
    problem.options.maxReplicasPerHead,
  );
}

/** Outcome of one layer. */
interface LayerOutcome {
  layer: LayerPlacement;
  proven: boolean;
  lowerBound: number;
}

/**
 * Relative room above the incumbent's time in the MILPs' upper bounds. glpk's feasibility tolerances are
 * about 1e-7 relative (the model is in microseconds), so a bound 1e-7 above a feasible incumbent made
 * glpk report the model infeasible (a 3-head layer on 3 unequal devices, found by fast-check).
 */
const UPPER_BOUND_SLACK = 1e-6;
/**
 * The room of a second try when glpk still calls the upper-bounded model infeasible: fair-copy's incumbent
 * satisfies the bound by construction, so that answer is numerical (a 4-head layer on 3 unequal devices
 * whose optimum is the incumbent itself, found by fast-check).
 */
const RETRY_UPPER_BOUND_SLACK = 1e-4;
/** Above this many hosting binaries the coupled MILP is not attempted (glpk.js does not close such models in seconds). */
export const COUPLED_MILP_MAX_BINARIES = 512;
/** A layer is proven optimal when its time is within this relative distance of a valid lower bound. */
export const PROOF_TOLERANCE = 1e-7;

/** Why MILPs ended unproven: stopped by the time limit with an incumbent, or a glpk status without a solution. */
interface UnprovenSolves {
  timeLimited: number;
  statuses: number[];
}

/** glpk's solution statuses (glp_mip_status), by number. */
const GLPK_STATUS_NAMES: Record<number, string> = {
  1: 'undefined',
  2: 'feasible',
  3: 'infeasible',
  4: 'no feasible solution',
  5: 'optimal',
  6: 'unbounded',
};

/** The warning of an unproven result: what stopped the proofs, and what is returned instead. */
function unprovenWarning(unproven: UnprovenSolves, timeLimitSeconds: number, mipGap: number): string {
  const reasons: string[] = [];
  if (unproven.timeLimited > 0 || unproven.statuses.length === 0) {
    reasons.push(`within ${timeLimitSeconds} s (mipGap ${mipGap})`);
  }
  if (unproven.statuses.length > 0) {
    const statuses = [...new Set(unproven.statuses)].map((status) => GLPK_STATUS_NAMES[status] ?? `status ${status}`);
    reasons.push(
      `${reasons.length > 0 ? 'and ' : ''}as glpk.js found no solution at or below the fair-copy incumbent in ` +
        `${unproven.statuses.length} model(s) (${statuses.join(', ')}: the incumbent sits at that bound within glpk's tolerances)`,
    );
  }
  return `ilp: optimality not proven ${reasons.join(' ')}; returning the best incumbent`;
}

function identicalDevices(problem: PlacementProblem): boolean {
  const [first] = problem.cluster.devices;
  return problem.cluster.devices.every(
    (device) =>
      device.memoryBandwidthBytesPerSecond === first!.memoryBandwidthBytesPerSecond &&
      device.memoryBytes === first!.memoryBytes,
  );
}

/** The layer's bytes spread by bandwidth with no copies: a valid lower bound on its time. */
function balancedBound(problem: PlacementProblem, costs: LayerCosts): number {
  const total = problem.bandwidth.reduce((sum, value) => sum + value, 0);
  let bytes = 0;
  problem.bandwidth.forEach((bw, device) => {
    bytes += costs.base[device]! * bw;
  });
  bytes += problem.kvHeadCount * problem.headWeightBytes;
  bytes += costs.kv.reduce((sum, row) => sum + row[0]! * problem.bandwidth[0]!, 0);
  return bytes / total;
}

/**
 * Solves each distinct layer's MILP on its own (valid when neither memory nor the copy budget binds
 * across layers). Layers whose kv loads are a permutation of each other share one solve: heads are
 * sorted by load, solved once and mapped back.
 */
async function solveLayers(
  problem: PlacementProblem,
  runner: Pick<GlpkRunner, 'solve'>,
  batch: number,
  start: LayerPlacement[],
  deadline: number,
  method: 'auto' | 'milp',
  onProgress?: (solved: number, total: number) => void,
  signal?: AbortSignal,
): Promise<{
  outcomes: LayerOutcome[];
  modelCount: number;
  proofs: { groupBound: number; milp: number };
  unproven: UnprovenSolves;
}> {
  const { groups, orders } = distinctLayers(problem);
  const outcomes: LayerOutcome[] = [];
  const proofs = { groupBound: 0, milp: 0 };
  const unproven: UnprovenSolves = { timeLimited: 0, statuses: [] };
  let solved = 0;
  for (const layers of groups) {
    if (signal?.aborted) throw new CancelledError('ILP solve cancelled');
    const first = layers[0]!;
    const full = layerCosts(problem, first, batch);
    const order = orders[first]!;
    const costs = canonicalCosts(full, order);
    const upper = Math.max(...layerDeviceSeconds(problem, start[first]!, first, batch));
    const exact =
      method === 'auto'
        ? exactLayer(
            problem,
            costs,
            order.map((head) => batch * problem.kvReadBytes[first]![head]!),
          )
        : null;
    let lowerBound = exact ? exact.lowerBound : balancedBound(problem, costs);
    let canonical: Map<number, number>[] | null = null;
    let proven = false;
    if (exact?.shares) {
      canonical = exact.shares;
      proven = Math.max(...deviceTimes(costs, canonical)) <= exact.lowerBound * (1 + PROOF_TOLERANCE);
      if (proven) proofs.groupBound += 1;
    }
    if (!proven) {
      const solveBounded = async (slack: number) => {
        const model = buildIlpModel({
          layers: [{ costs, upperBound: upper * (1 + slack), lowerBound }],
          bandwidth: problem.bandwidth,
          maxReplicasPerHead: problem.options.maxReplicasPerHead,
          identicalDevices: identicalDevices(problem),
          deviceGroups: identicalDeviceGroups(problem),
        });
        const tmlim = Math.max(0.05, (deadline - performance.now()) / 1000 / (groups.length - solved));
        const [outcome] = await runner.solve([
          { model, options: { msglev: 0, tmlim, mipgap: problem.options.mipGap } },
        ]);
        return outcome;
      };
      let result = await solveBounded(UPPER_BOUND_SLACK);
      if (result && result.result.status !== GLP_OPT && result.result.status !== GLP_FEAS)
        result = await solveBounded(RETRY_UPPER_BOUND_SLACK);
      const status = result?.result.status;
      if (result && (status === GLP_OPT || status === GLP_FEAS)) {
        canonical = readLayerShares(result.result.vars, 0, problem.kvHeadCount, problem.deviceCount);
        const reached = Math.max(...deviceTimes(costs, canonical));
        proven = status === GLP_OPT || reached <= lowerBound * (1 + PROOF_TOLERANCE);
        if (status === GLP_OPT) lowerBound = Math.max(lowerBound, objectiveSeconds(result.result.z) * (1 - 1e-9));
        if (proven) proofs.milp += 1;
        else if (status === GLP_FEAS) unproven.timeLimited += 1;
      } else {
        unproven.statuses.push(status ?? 0);
      }
    }
    for (const layer of layers) {
      let placement = start[layer]!;
      if (canonical) {
        const candidate = toLayerPlacement(fromCanonical(canonical, orders[layer]!));
        const time = (layerPlacement: LayerPlacement) =>
          Math.max(...layerDeviceSeconds(problem, layerPlacement, layer, batch));
        if (time(candidate) <= time(placement)) placement = candidate;
      }
      outcomes[layer] = { layer: placement, proven, lowerBound };
    }
    solved += 1;
    onProgress?.(solved, groups.length);
  }
  return { outcomes, modelCount: groups.length, proofs, unproven };
}

function fitsWithin(problem: PlacementProblem, layers: LayerPlacement[], batch: number): boolean {
  const { weightBytes, kvBytesPerRequest } = deviceMemoryTerms(problem, layers);
  return weightBytes.every(
    (weights, device) => weights + batch * kvBytesPerRequest[device]! <= problem.usableMemoryBytes[device]!,
  );
}

function copiesOf(layers: LayerPlacement[]): number {
  return layers.reduce(
    (sum, layer) => sum + layer.heads.reduce((headSum, head) => headSum + head.replicas.length - 1, 0),
    0,
  );
}

/**
 * One MILP over every layer when memory or the copy budget couples them (docs/cost-model.md, "ilp"):
 * memory rows per device, the total copy budget, per-layer lower bounds from the decomposed solves
 * and the fair-copy total as an upper bound.
 */
async function solveCoupled(
  problem: PlacementProblem,
  runner: Pick<GlpkRunner, 'solve'>,
  batch: number,
  start: LayerPlacement[],
  lowerBounds: number[],
  deadline: number,
  unproven: UnprovenSolves,
): Promise<{ layers: LayerPlacement[]; proven: boolean } | null> {
  const upperBounds = start.map((layer, index) => Math.max(...layerDeviceSeconds(problem, layer, index, batch)));
  const totalUpper = upperBounds.reduce((sum, value) => sum + value, 0);
  const lowerTotal = lowerBounds.reduce((sum, value) => sum + value, 0);
  const layers: IlpLayer[] = upperBounds.map((_, index) => ({
    costs: layerCosts(problem, index, batch),
    // a layer may be slower than fair-copy's as long as the total is not: its own bound is the total's slack
    upperBound: totalUpper - (lowerTotal - lowerBounds[index]!),
    lowerBound: lowerBounds[index]!,
  }));
  const model = buildIlpModel({
    layers,
    bandwidth: problem.bandwidth,
    maxReplicasPerHead: problem.options.maxReplicasPerHead,
    identicalDevices: identicalDevices(problem),
    deviceGroups: identicalDeviceGroups(problem),
    coupling: {
      memoryRoom: problem.usableMemoryBytes.map((usable) => usable - problem.baseWeightBytes),
      headWeightBytes: problem.headWeightBytes,
      kvMemoryBytes: problem.kvMemoryBytes.map((row) => row.map((bytes) => bytes * batch)),
      copyBudget: problem.options.copyBudget,
      totalUpperBound: totalUpper * (1 + UPPER_BOUND_SLACK),
    },
  });
  const tmlim = Math.max(0.05, (deadline - performance.now()) / 1000);
  const [result] = await runner.solve([{ model, options: { msglev: 0, tmlim, mipgap: problem.options.mipGap } }]);
  if (!result || (result.result.status !== GLP_OPT && result.result.status !== GLP_FEAS)) {
    unproven.statuses.push(result?.result.status ?? 0);
    return null;
  }
  if (result.result.status === GLP_FEAS) unproven.timeLimited += 1;
  const placed = upperBounds.map((_, index) =>
    toLayerPlacement(readLayerShares(result.result.vars, index, problem.kvHeadCount, problem.deviceCount)),
  );
  return { layers: placed, proven: result.result.status === GLP_OPT };
}

/**
 * The exact placement (FairKV, arXiv 2502.15804, with Fair-Copying) as glpk.js MILPs, warm-started from
 * fair-copy (its layer times bound the MILPs from above, so the ILP is never worse). Per layer when
 * layers are independent; when memory or the copy budget binds across layers, as a total copy budget
 * (exact knapsack over per-layer optima), else a repair and, for small models, one coupled MILP.
 * Runs glpk.js in a worker thread unless `options.worker` is false. On time-out returns the best
 * incumbent with a warning.
 * @throws ValidationError, CapacityError as `solvePlacement`; CancelledError when `signal` aborts.
 */
export async function solveIlp(request: SolveIlpRequest): Promise<IlpResult> {
  if (request.signal?.aborted) throw new CancelledError('ILP solve cancelled');
  const started = performance.now();
  const problem = resolvePlacementProblem(request);
  const deadline = started + problem.options.timeLimitSeconds * 1000;
  const warm = fairCopySolver.solve(problem, solveTarget(problem, 'fair-copy'));
  const batch = request.batch === 'max' ? Math.max(1, maxBatchOf(problem, warm.layers)) : request.batch;
  assertFits(problem, warm.layers, batch, 'ilp (fair-copy warm start)');
  const warnings = [...problem.warnings, ...warm.warnings];
  const runner = new LazyRunner(problem.options.worker, warnings, request.signal);
  let layers: LayerPlacement[];
  let proven: boolean;
  let coupled = false;
  let lowerBounds: number[];
  let modelCount: number;
  let layerProofs = { groupBound: 0, milp: 0 };
  let unproven: UnprovenSolves = { timeLimited: 0, statuses: [] };
  let budgetBound = 0;
  try {
    const decomposed = await solveLayers(
      problem,
      runner,
      batch,
      warm.layers,
      deadline,
      request.method ?? 'auto',
      request.onProgress,
      request.signal,
    );
    layerProofs = decomposed.proofs;
    unproven = decomposed.unproven;
    modelCount = decomposed.modelCount;
    lowerBounds = decomposed.outcomes.map((outcome) => outcome.lowerBound);
    layers = balanceMemoryByRelabeling(
      problem,
      decomposed.outcomes.map((outcome) => outcome.layer),
      batch,
    );
    proven = decomposed.outcomes.every((outcome) => outcome.proven);
    if (!fitsWithin(problem, layers, batch) || copiesOf(layers) > problem.options.copyBudget) {
      coupled = true;
      proven = false;
      // the coupling is (at least) a total copy budget: memory summed over devices only depends on the replica count
      const budget = Math.min(problem.options.copyBudget, memoryCopyBudget(problem, batch));
      const solveBudget =
        (request.method ?? 'auto') === 'auto' && identicalDevices(problem) ? copyBudgetSolver(problem, batch) : null;
      const budgeted = solveBudget?.(budget);
      if (budgeted) {
        // a bound on the sum only (the knapsack trades copies between layers), not on each layer
        budgetBound = budgeted.lowerBounds.reduce((sum, value) => sum + value, 0);
        // optimal for the relaxation (total memory, copy budget); optimal outright when every device fits.
        // Otherwise fewer copies leave the room per-device balance needs: the first that fits is the incumbent.
        for (let fewer = 0; budgeted.reached && fewer <= 4 * problem.deviceCount; fewer = fewer === 0 ? 1 : fewer * 2) {
          const attempt = fewer === 0 ? budgeted : solveBudget!(budget - fewer);
          if (!attempt?.reached) break;
          const balanced = balanceMemoryByRelabeling(problem, attempt.layers, batch);
          if (fitsWithin(problem, balanced, batch) && copiesOf(balanced) <= problem.options.copyBudget) {
            layers = balanced;
            proven = fewer === 0;
            break;
          }
        }
      }
    }
    if (coupled && !proven) {
      const repaired = repairToFit(problem, layers, warm.layers, batch);
      const incumbent =
        repaired && stepSeconds(problem, repaired, batch) < stepSeconds(problem, warm.layers, batch)
          ? repaired
          : warm.layers;
      layers = incumbent;
      proven = false;
      if (problem.layerCount * problem.kvHeadCount * problem.deviceCount <= COUPLED_MILP_MAX_BINARIES) {
        modelCount += 1;
        const result = await solveCoupled(problem, runner, batch, incumbent, lowerBounds, deadline, unproven);
        request.onProgress?.(modelCount, modelCount);
        if (
          result &&
          fitsWithin(problem, result.layers, batch) &&
          copiesOf(result.layers) <= problem.options.copyBudget
        ) {
          if (stepSeconds(problem, result.layers, batch) <= stepSeconds(problem, incumbent, batch) * (1 + 1e-12)) {
            layers = result.layers;
            proven = result.proven;
          }
        }
      } else {
        const binaries = problem.layerCount * problem.kvHeadCount * problem.deviceCount;
        warnings.push(
          `ilp: memory or the copy budget binds across layers; the ${binaries}-binary coupled MILP is beyond glpk.js, so ` +
            'the best plan found that fits is returned (budgeted per-layer optima, or layers swapped back to fair-copy; see gap)',
        );
      }
    }
  } finally {
    await runner.close();
  }
  if (stepSeconds(problem, layers, batch) > stepSeconds(problem, warm.layers, batch) * (1 + 1e-12)) {
    // fair-copy is better (by rounding: the wrap-around aims 1e-9 above the bound): it fits and keeps the
    // budget, and if the incumbent was proven within tolerance of the bound, so is fair-copy's plan
    layers = warm.layers;
  }
  const binaries = problem.layerCount * problem.kvHeadCount * problem.deviceCount;
  if (!proven && (!coupled || binaries <= COUPLED_MILP_MAX_BINARIES)) {
    warnings.push(unprovenWarning(unproven, problem.options.timeLimitSeconds, problem.options.mipGap));
  }
  const solveSeconds = (performance.now() - started) / 1000;
  const plan = finishPlan(problem, 'ilp', layers);
  const predicted = plan.predicted;
  const layerTotal = layers.reduce(
    (sum, layer, index) => sum + Math.max(...layerDeviceSeconds(problem, layer, index, batch)),
    0,
  );
  const boundTotal = Math.min(
    layerTotal,
    Math.max(
      budgetBound,
      lowerBounds.reduce((sum, value) => sum + value, 0),
    ),
  );
  const gap = proven ? 0 : Math.max(0, (layerTotal - boundTotal) / layerTotal);
  return {
    plan,
    predicted,
    solveSeconds,
    optimal: proven,
    gap,
    solveBatch: batch,
    lowerBoundSeconds: stepSeconds(problem, layers, batch) - layerTotal + boundTotal,
    warnings,
    mode: runner.mode,
    coupled,
    modelCount,
    layerProofs,
  };
}
