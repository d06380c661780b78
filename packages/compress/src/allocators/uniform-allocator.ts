import type { BudgetAllocator, LayerBudget } from './allocator.js';

/**
 * Every kv head of a layer gets the layer's average prefix budget (SnapKV; PyramidKV within a layer).
 * A budget at or above the prefix keeps everything, as SnapKV does when `q_len < max_capacity_prompt`.
 */
export function uniformAllocator(layerBudget: LayerBudget): BudgetAllocator {
  return {
    name: 'uniform',
    settings: { layerBudget: { name: layerBudget.name, ...layerBudget.settings } },
    allocate(request) {
      const budget = Math.max(0, Math.floor(layerBudget.prefixBudget(request)));
      return new Int32Array(request.kvHeadCount).fill(Math.min(budget, request.prefixLength));
    },
  };
}
