/**
 * `@fairkv/placement/ilp`: the exact FairKV placement (arXiv 2502.15804, with Fair-Copying) as
 * glpk.js MILPs, solved in a worker thread. Its own entry point so that users of the other solvers
 * never load WASM. Same result shape as `solvePlacement`.
 *
 * @packageDocumentation
 */
export { createGlpkRunner, type GlpkJob, type GlpkRunner, glpkModuleUrl } from './glpk-runner.js';
export {
  buildIlpModel,
  GLP_FEAS,
  GLP_OPT,
  type IlpCoupling,
  type IlpLayer,
  type IlpModelInput,
  minimumReplicas,
  shareCap,
} from './ilp-model.js';
export { type IlpResult, type SolveIlpRequest, solveIlp } from './solve-ilp.js';
