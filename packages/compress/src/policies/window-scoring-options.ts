import type { ValidationIssue } from '@fairkv/core';
import { checkInteger } from '../compose-policy.js';
import type { GroupReduction } from '../selection/group-reduction.js';
import type { Pooling } from '../selection/pool1d.js';

/**
 * Options shared by the policies that score with SnapKV's observation window (SnapKV, PyramidKV, Ada-KV,
 * HeadKV). Defaults follow FFY0/AdaKV's configs (`c{budget}_w32_k7_maxpool.json`), which KVCache-Factory's
 * Ada-KV and HeadKV clusters share.
 */
export interface WindowScoringOptions {
  /**
   * Average tokens kept per kv head, observation window included (`max_capacity_prompt` / `base_capacity` in
   * the references; the references use 128 to 2048). Must be at least `windowSize`.
   */
  averageBudget: number;
  /** Observation window: the last prompt tokens whose attention scores the rest, always kept. Default 32. */
  windowSize?: number;
  /** Odd 1-D pooling kernel. Default 7. */
  kernelSize?: number;
  /** Pooling: `max` (default) or `avg`. */
  pooling?: Pooling;
  /** GQA reduction of the query heads of a kv head: `mean` (default) or `max`. */
  groupReduction?: GroupReduction;
}

/** {@link WindowScoringOptions} with defaults filled in. */
export type ResolvedWindowScoring = Required<WindowScoringOptions>;

/** Fills defaults and records invalid options as issues. */
export function resolveWindowScoring(options: WindowScoringOptions, issues: ValidationIssue[]): ResolvedWindowScoring {
  const resolved: ResolvedWindowScoring = {
    averageBudget: options.averageBudget,
    windowSize: options.windowSize ?? 32,
    kernelSize: options.kernelSize ?? 7,
    pooling: options.pooling ?? 'max',
    groupReduction: options.groupReduction ?? 'mean',
  };
  checkInteger('windowSize', resolved.windowSize, 1, issues);
  checkInteger(
    'averageBudget',
    resolved.averageBudget,
    Number.isInteger(resolved.windowSize) ? resolved.windowSize : 1,
    issues,
  );
  if (!(Number.isInteger(resolved.kernelSize) && resolved.kernelSize >= 1 && resolved.kernelSize % 2 === 1)) {
    issues.push({ path: '$.kernelSize', message: `expected an odd integer >= 1, got ${resolved.kernelSize}` });
  }
  if (resolved.pooling !== 'max' && resolved.pooling !== 'avg') {
    issues.push({ path: '$.pooling', message: `expected 'max' or 'avg', got ${String(resolved.pooling)}` });
  }
  if (resolved.groupReduction !== 'mean' && resolved.groupReduction !== 'max') {
    issues.push({
      path: '$.groupReduction',
      message: `expected 'mean' or 'max', got ${String(resolved.groupReduction)}`,
    });
  }
  return resolved;
}
