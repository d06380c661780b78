import type { LayerBudget } from './allocator.js';

/**
 * The same average budget for every layer: `averageBudget - window` prefix tokens per kv head, where
 * `averageBudget` counts the window (SnapKV's `max_capacity_prompt`, Ada-KV's `base_capacity`).
 */
export function uniformLayerBudget(averageBudget: number): LayerBudget {
  return {
    name: 'uniform',
    settings: { averageBudget },
    prefixBudget: ({ windowSize }) => averageBudget - windowSize,
  };
}
