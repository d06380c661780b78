import type { ValidationIssue } from '@fairkv/core';
import { uniformAllocator } from '../allocators/uniform-allocator.js';
import { type CompressionPolicy, checkInteger, checkRange, composePolicy, throwIfIssues } from '../compose-policy.js';
import { h2oScorer } from '../scorers/h2o-scorer.js';
import type { GroupReduction } from '../selection/group-reduction.js';

/** Options of {@link h2oPolicy}: ratios of the prompt (default), or absolute sizes when given. */
export interface H2oOptions {
  /** Heavy hitters kept, as a fraction of the prompt; default 0.1 (FMInference/H2O `--heavy_ratio 0.1`). */
  heavyRatio?: number;
  /** Recent tokens kept, as a fraction of the prompt; default 0.1 (`--recent_ratio 0.1`). */
  recentRatio?: number;
  /** Heavy hitters kept, in tokens (overrides `heavyRatio`; H2O's `hh_size`). */
  heavySize?: number;
  /** Recent tokens kept (overrides `recentRatio`; H2O's `recent_size`). */
  recentSize?: number;
  /** GQA reduction; default `mean`. */
  groupReduction?: GroupReduction;
}

/**
 * H2O (Zhang et al., NeurIPS 2023, arXiv 2306.14048; FMInference/H2O `H2OKVCache_LayerWise`): every head keeps
 * the recent tokens and the heavy hitters, the earlier tokens with the most attention accumulated over all prompt
 * queries. Ratios are of the prompt length, truncated (`int(ratio * n)` as in H2O's `utils_hh`).
 * @throws ConfigError for invalid options.
 */
export function h2oPolicy(options: H2oOptions = {}): CompressionPolicy {
  const heavyRatio = options.heavyRatio ?? 0.1;
  const recentRatio = options.recentRatio ?? 0.1;
  const issues: ValidationIssue[] = [];
  checkRange('heavyRatio', heavyRatio, 0, 1, issues);
  checkRange('recentRatio', recentRatio, 0, 1, issues);
  if (options.heavySize !== undefined) checkInteger('heavySize', options.heavySize, 0, issues);
  if (options.recentSize !== undefined) checkInteger('recentSize', options.recentSize, 0, issues);
  throwIfIssues('h2o', issues);
  const heavy = (seqLen: number) => options.heavySize ?? Math.floor(heavyRatio * seqLen);
  const recent = (seqLen: number) => options.recentSize ?? Math.floor(recentRatio * seqLen);
  const settings: Record<string, unknown> = { heavyRatio, recentRatio };
  if (options.heavySize !== undefined) settings.heavySize = options.heavySize;
  if (options.recentSize !== undefined) settings.recentSize = options.recentSize;
  return composePolicy({
    name: 'h2o',
    settings: { ...settings, groupReduction: options.groupReduction ?? 'mean' },
    window: recent,
    scorer: h2oScorer(),
    allocator: uniformAllocator({ name: 'heavy-hitters', settings: {}, prefixBudget: ({ seqLen }) => heavy(seqLen) }),
    groupReduction: options.groupReduction ?? 'mean',
  });
}
