/**
 * Names the command definitions list as flag choices, kept in a module with no heavy imports so that
 * `--help`, `--version` and usage errors load no model, solver or policy code.
 *
 * @packageDocumentation
 */

/** Every solver name `--solver` accepts (besides `all`): @fairkv/placement's three and the ILP. */
export const SOLVER_NAMES = ['contiguous', 'greedy', 'fair-copy', 'ilp'] as const;

/** A name from {@link SOLVER_NAMES}. */
export type CliSolverName = (typeof SOLVER_NAMES)[number];

/** Policy names `--policy` accepts: @fairkv/compress's catalog (a small module with no heavy imports). */
export { POLICY_NAMES, type PolicyName } from '@fairkv/compress';

/** Backends `--backend` names; the runtime drives `cpu` today (`auto` picks it). */
export const BACKEND_CHOICES = ['auto', 'cpu', 'cuda', 'webgpu'] as const;
