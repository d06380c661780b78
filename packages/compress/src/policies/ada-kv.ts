import type { ValidationIssue } from '@fairkv/core';
import { type AdaKvAllocatorOptions, adaKvAllocator } from '../allocators/ada-kv-allocator.js';
import { type PyramidLayerBudgetOptions, pyramidLayerBudget } from '../allocators/pyramid-layer-budget.js';
import { uniformLayerBudget } from '../allocators/uniform-layer-budget.js';
import { type CompressionPolicy, checkInteger, checkRange, composePolicy, throwIfIssues } from '../compose-policy.js';
import { snapKvScorer } from '../scorers/snapkv-scorer.js';
import { resolveWindowScoring, type WindowScoringOptions } from './window-scoring-options.js';

/** Options of {@link adaKvPolicy}. */
export interface AdaKvOptions extends WindowScoringOptions, AdaKvAllocatorOptions {
  /**
   * Layer budgets: uniform (Ada-SnapKV, default) or a pyramid (Ada-PyramidKV, Ada-KV's `pyram_mode`; its
   * defaults there: beta 20, `floor` steps, no short-prompt fallback).
   */
  pyramid?: boolean | Omit<PyramidLayerBudgetOptions, 'averageBudget'>;
}

/**
 * Ada-KV as Ada-SnapKV (Feng et al., arXiv 2407.11550; FFY0/AdaKV `AdaptiveSnapKVCluster`): SnapKV scores, then
 * each layer's `kvHeads x (averageBudget - window)` prefix budget is split across kv heads by a layer-wide top-k
 * with an alpha floor per head. `variant: 'kvpress'` selects NVIDIA/kvpress `AdaKVPress`'s safeguard instead
 * (see `AdaKvVariant`). With `pyramid`, layer budgets follow PyramidKV first.
 * @throws ConfigError for invalid options.
 */
export function adaKvPolicy(options: AdaKvOptions): CompressionPolicy {
  const issues: ValidationIssue[] = [];
  const resolved = resolveWindowScoring(options, issues);
  const floorAlpha = options.floorAlpha ?? 0.2;
  const variant = options.variant ?? 'adakv';
  checkRange('floorAlpha', floorAlpha, 0, 1, issues);
  checkInteger('skipLayers', options.skipLayers ?? 0, 0, issues);
  if (variant !== 'adakv' && variant !== 'kvpress') {
    issues.push({ path: '$.variant', message: `expected 'adakv' or 'kvpress', got ${String(variant)}` });
  }
  throwIfIssues('ada-kv', issues);
  const pyramid = options.pyramid === true ? {} : options.pyramid || undefined;
  const layerBudget = pyramid
    ? pyramidLayerBudget({
        averageBudget: resolved.averageBudget,
        beta: pyramid.beta ?? 20,
        steps: pyramid.steps ?? 'floor',
        shortPromptFallback: pyramid.shortPromptFallback ?? false,
      })
    : uniformLayerBudget(resolved.averageBudget);
  const allocator = adaKvAllocator(layerBudget, {
    floorAlpha,
    variant,
    normalize: options.normalize ?? false,
    skipLayers: options.skipLayers ?? 0,
  });
  return composePolicy({
    name: 'ada-kv',
    settings: { ...resolved, ...allocator.settings },
    window: resolved.windowSize,
    scorer: snapKvScorer(resolved),
    allocator,
    groupReduction: resolved.groupReduction,
  });
}
