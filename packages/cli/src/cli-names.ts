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

/** Dtypes `--dtype` accepts where a model runs: `auto` (f32 on the CPU, the model's own on GPUs) or one of core's. */
export const DTYPE_CHOICES = ['auto', 'f32', 'f16', 'bf16'] as const;

/** A name from {@link DTYPE_CHOICES}. */
export type DtypeChoice = (typeof DTYPE_CHOICES)[number];

/** What `--dtype auto` means, for the option texts of the commands that run a model. */
export const DTYPE_AUTO_HELP =
  "auto: f32 on the CPU; on GPUs the model's own, bf16 or f16 as its matrices are stored, f16 for quantised GGUF, f32 for f32 models";
