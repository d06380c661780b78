import { roundHalfEven } from '../selection/round-half-even.js';
import type { LayerBudget } from './allocator.js';

/** Options of {@link pyramidLayerBudget}. */
export interface PyramidLayerBudgetOptions {
  /** Average tokens kept per kv head, window included (`max_capacity_prompt`). */
  averageBudget: number;
  /** Pyramid steepness: the top layer keeps `1/beta` of the average prefix budget; default 20 (all references). */
  beta?: number;
  /**
   * `floor` (default): the integer arithmetic of KVCache-Factory's `PyramidKVCluster` and Ada-KV's `pyram_mode`
   * (`min = base // beta`, `steps = (max - min) // (layers - 1)`), whose layer mean exceeds the average by
   * up to `(layers - 2) / 2` tokens. `exact`: kvpress `PyramidKVPress` (real-valued min and steps, each layer
   * rounded), whose layer mean is the average within 0.5.
   */
  steps?: 'floor' | 'exact';
  /**
   * KVCache-Factory keeps SnapKV's uniform budget when the prompt is shorter than twice the average prefix
   * budget (`q_len < (max_capacity_prompt - window) * 2`); Ada-KV's `pyram_mode` and kvpress do not. Default
   * `true` (the PyramidKV authors' reference).
   */
  shortPromptFallback?: boolean;
}

/**
 * PyramidKV layer budgets (Cai et al., "PyramidKV: Dynamic KV Cache Compression based on Pyramidal Information
 * Funneling", arXiv 2406.02069; reference Zefan-Cai/KVCache-Factory `pyramidkv_utils.py`): with
 * `base = averageBudget - window`, `min = base / beta`, `max = 2 base - min`; when `max >= n - window` the pyramid
 * is clamped to the prompt (`max = n - window`, `min = 2 base - max`); layer `l` keeps
 * `max - l * (max - min) / (layers - 1)` prefix tokens: lower layers keep more, and the layers average `base`.
 * A one-layer model, or a prompt shorter than the budget, gets `base`.
 */
export function pyramidLayerBudget(options: PyramidLayerBudgetOptions): LayerBudget {
  const { averageBudget } = options;
  const beta = options.beta ?? 20;
  const steps = options.steps ?? 'floor';
  const shortPromptFallback = options.shortPromptFallback ?? true;
  return {
    name: 'pyramid',
    settings: { averageBudget, beta, steps, shortPromptFallback },
    prefixBudget({ layerIndex, layerCount, seqLen, windowSize }) {
      const base = averageBudget - windowSize;
      const prefixLength = seqLen - windowSize;
      if (layerCount === 1 || seqLen < averageBudget) return base;
      if (shortPromptFallback && seqLen < base * 2) return base;
      if (steps === 'floor') {
        let minimum = Math.floor(base / beta);
        let maximum = base * 2 - minimum;
        if (maximum >= prefixLength) {
          maximum = prefixLength;
          minimum = base * 2 - maximum;
        }
        const step = Math.floor((maximum - minimum) / (layerCount - 1));
        return maximum - layerIndex * step;
      }
      let minimum = base / beta;
      let maximum = base * 2 - minimum;
      if (maximum >= prefixLength) {
        maximum = prefixLength;
        minimum = base * 2 - maximum;
      }
      return roundHalfEven(maximum - (layerIndex * (maximum - minimum)) / (layerCount - 1));
    },
  };
}
