import type { ValidationIssue } from '@fairkv/core';
import { uniformAllocator } from '../allocators/uniform-allocator.js';
import { uniformLayerBudget } from '../allocators/uniform-layer-budget.js';
import { type CompressionPolicy, composePolicy, throwIfIssues } from '../compose-policy.js';
import { snapKvScorer } from '../scorers/snapkv-scorer.js';
import { resolveWindowScoring, type WindowScoringOptions } from './window-scoring-options.js';

/**
 * SnapKV (Li et al., arXiv 2404.14469; FasterDecoding/SnapKV and KVCache-Factory `SnapKVCluster`): every kv head
 * keeps its top `averageBudget - windowSize` prefix tokens by pooled observation-window attention, plus the
 * window. A prompt shorter than the budget is kept whole (`q_len < max_capacity_prompt`).
 * @throws ConfigError for invalid options.
 */
export function snapKvPolicy(options: WindowScoringOptions): CompressionPolicy {
  const issues: ValidationIssue[] = [];
  const resolved = resolveWindowScoring(options, issues);
  throwIfIssues('snapkv', issues);
  return composePolicy({
    name: 'snapkv',
    settings: { ...resolved },
    window: resolved.windowSize,
    scorer: snapKvScorer(resolved),
    allocator: uniformAllocator(uniformLayerBudget(resolved.averageBudget)),
    groupReduction: resolved.groupReduction,
  });
}
