/**
 * `@fairkv/placement`: the FairKV cost model and placement solvers (Zhao et al., arXiv 2502.15804):
 * `contiguous` (standard TP), `greedy` (best-effort assignment), `fair-copy` (Fair-Copying). The exact
 * ILP is in `@fairkv/placement/ilp` so that these never load WASM. docs/cost-model.md has the formulas.
 *
 * @packageDocumentation
 */

export {
  type CostConstants,
  fitCostConstants,
  fitLayerOverhead,
  type MeasuredStep,
  type StepTerms,
  stepTerms,
} from './calibration.js';
export {
  allReduceSeconds,
  type DevicePlacementPrediction,
  deviceMemoryTerms,
  idealStepSeconds,
  layerDeviceBytes,
  layerDeviceSeconds,
  maxBatchOf,
  outputSeconds,
  type PlacementPrediction,
  predictLayers,
  stepSeconds,
} from './cost-model.js';
export {
  type MemoryLoad,
  type PlacementOptions,
  type PlacementProblem,
  type PlacementRequest,
  type ResolvedPlacementOptions,
  resolvePlacementOptions,
  resolvePlacementProblem,
} from './placement-request.js';
export {
  assertFits,
  finishPlan,
  idealBatch,
  type PlacementPlan,
  type PlacementResult,
  predictPlan,
  SOLVERS,
  type SolvePlacementRequest,
  solvePlacement,
  solveTarget,
} from './solve-placement.js';
export { type AnySolverName, SOLVER_CATALOG, type SolverInfo } from './solver-catalog.js';
export { assertContiguousPossible, contiguousDevice, contiguousLayer, contiguousSolver } from './solvers/contiguous.js';
export { fairCopyLayers, fairCopySolver } from './solvers/fair-copy.js';
export { greedyLayer, greedyLayers, greedySolver } from './solvers/greedy.js';
export { deviceTimes, type LayerCosts, layerCosts, toLayerPlacement } from './solvers/layer-costs.js';
export type { PlacementSolver, SolverName, SolverOutput, SolveTarget } from './solvers/placement-solver.js';
export { type SyntheticProfileOptions, syntheticHeavyTailedProfile } from './synthetic-profile.js';
