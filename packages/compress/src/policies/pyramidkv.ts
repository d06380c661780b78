import type { ValidationIssue } from '@fairkv/core';
import { type PyramidLayerBudgetOptions, pyramidLayerBudget } from '../allocators/pyramid-layer-budget.js';
import { uniformAllocator } from '../allocators/uniform-allocator.js';
import { type CompressionPolicy, composePolicy, throwIfIssues } from '../compose-policy.js';
import { snapKvScorer } from '../scorers/snapkv-scorer.js';
import { resolveWindowScoring, type WindowScoringOptions } from './window-scoring-options.js';

/** Options of {@link pyramidKvPolicy}. */
export interface PyramidKvOptions extends WindowScoringOptions, Omit<PyramidLayerBudgetOptions, 'averageBudget'> {}

/**
 * PyramidKV (Cai et al., arXiv 2406.02069; Zefan-Cai/KVCache-Factory `PyramidKVCluster`): SnapKV scores, with
 * per-layer budgets that shrink linearly from the first layer to the last (`pyramidLayerBudget`: beta 20,
 * the clamp when the pyramid exceeds the prompt), uniform within a layer.
 * @throws ConfigError for invalid options.
 */
export function pyramidKvPolicy(options: PyramidKvOptions): CompressionPolicy {
  const issues: ValidationIssue[] = [];
  const resolved = resolveWindowScoring(options, issues);
  const beta = options.beta ?? 20;
  if (!(beta >= 1)) issues.push({ path: '$.beta', message: `expected a number >= 1, got ${beta}` });
  throwIfIssues('pyramidkv', issues);
  const layerBudget = pyramidLayerBudget({
    averageBudget: resolved.averageBudget,
    beta,
    steps: options.steps ?? 'floor',
    shortPromptFallback: options.shortPromptFallback ?? true,
  });
  return composePolicy({
    name: 'pyramidkv',
    settings: { ...resolved, ...layerBudget.settings },
    window: resolved.windowSize,
    scorer: snapKvScorer(resolved),
    allocator: uniformAllocator(layerBudget),
    groupReduction: resolved.groupReduction,
  });
}
