/** Every placement solver, main entry and `ilp` alike. */
export type AnySolverName = 'contiguous' | 'greedy' | 'fair-copy' | 'ilp';

/** What a tool (the CLI's `--solver` help, a dashboard) needs to know about a solver without loading it. */
export interface SolverInfo {
  name: AnySolverName;
  description: string;
  /** Whether it creates Fair-Copying replicas. */
  copies: boolean;
  /** Whether it can prove its plan optimal for the cost model. */
  exact: boolean;
  /** Where to import it from: `solvePlacement` (main entry) or `solveIlp` (`@fairkv/placement/ilp`, loads WASM). */
  entry: '@fairkv/placement' | '@fairkv/placement/ilp';
}

/** The solvers as data, in baseline-to-exact order (FairKV, arXiv 2502.15804; docs/cost-model.md). */
export const SOLVER_CATALOG: readonly SolverInfo[] = [
  {
    name: 'contiguous',
    description: 'standard tensor parallelism, kv head h on device floor(h*G/H): the baseline',
    copies: false,
    exact: false,
    entry: '@fairkv/placement',
  },
  {
    name: 'greedy',
    description: 'best-effort assignment without copies, memory-aware ties, swaps',
    copies: false,
    exact: false,
    entry: '@fairkv/placement',
  },
  {
    name: 'fair-copy',
    description: 'greedy plus Fair-Copying: heavy heads replicated with split request shares',
    copies: true,
    exact: false,
    entry: '@fairkv/placement',
  },
  {
    name: 'ilp',
    description: 'exact optimum (group bound, glpk.js MILP in a worker thread), warm-started from fair-copy',
    copies: true,
    exact: true,
    entry: '@fairkv/placement/ilp',
  },
];
