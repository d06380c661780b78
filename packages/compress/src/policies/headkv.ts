import type { ValidationIssue } from '@fairkv/core';
import { headImportanceAllocator } from '../allocators/head-importance-allocator.js';
import { type CompressionPolicy, composePolicy, throwIfIssues } from '../compose-policy.js';
import { snapKvScorer } from '../scorers/snapkv-scorer.js';
import { resolveWindowScoring, type WindowScoringOptions } from './window-scoring-options.js';

/** Options of {@link headKvPolicy}. */
export interface HeadKvOptions extends WindowScoringOptions {
  /** Static head importance `[layer][head]` (kv or query heads): `parseHeadKvImportance` or `importanceFromProfile`. */
  importance: number[][];
  /** Pool size parameter; default 1.005 (see `headImportanceAllocator`). */
  beta?: number;
  /** Importance exponent; default 1. */
  temperature?: number;
  /** Source of the importance, recorded in settings (e.g. a file name). */
  importanceSource?: string;
}

/**
 * HeadKV (Fu et al., ICLR 2025, arXiv 2410.19258; FYYFU/HeadKV `ReasonSnapKVCluster`, KVCache-Factory
 * `HeadKVCluster`): static per-head budgets from head importance (`headImportanceAllocator`), SnapKV scores to
 * choose the tokens within each head. Budgets differ across layers and heads.
 * @throws ConfigError for invalid options or importance rows.
 */
export function headKvPolicy(options: HeadKvOptions): CompressionPolicy {
  const issues: ValidationIssue[] = [];
  const resolved = resolveWindowScoring(options, issues);
  throwIfIssues('headkv', issues);
  const allocator = headImportanceAllocator({
    importance: options.importance,
    averageBudget: resolved.averageBudget,
    ...(options.beta !== undefined ? { beta: options.beta } : {}),
    ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
  });
  return composePolicy({
    name: 'headkv',
    settings: {
      ...resolved,
      ...allocator.settings,
      importance:
        options.importanceSource ?? `${options.importance.length} x ${options.importance[0]?.length ?? 0} matrix`,
    },
    window: resolved.windowSize,
    scorer: snapKvScorer(resolved),
    allocator,
    groupReduction: resolved.groupReduction,
  });
}
