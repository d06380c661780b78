import { copyScores, kthLargest } from '../selection/kth-largest.js';
import { roundHalfEven } from '../selection/round-half-even.js';
import { countTopPerRow, selectTopPositions } from '../selection/select-top.js';
import type { AllocationRequest, BudgetAllocator, LayerBudget } from './allocator.js';

/**
 * The two published forms of Ada-KV's safeguard.
 * - `adakv` (FFY0/AdaKV `AdaptiveSnapKVCluster`): take the layer-wide top `H x b` scores, count them per head
 *   (`c_h`), then shrink towards the floor: `budget_h = round(c_h (1 - alpha) + floor(b alpha))`. The layer total
 *   is `H x b` within rounding (it lies in `(H b - 1.5 H, H b + 0.5 H]`); every head keeps at least `floor(b alpha)`.
 * - `kvpress` (NVIDIA/kvpress `AdaKVPress`): every head keeps at least `n_safe = floor(alpha x (b + window))` tokens
 *   counting the window (kvpress's `int(n_kept * alpha_safeguard)`, where `n_kept` includes the window that its
 *   SnapKV scorer pads with the maximum score), so its top `n_safe - window` prefix tokens are protected; then the
 *   layer-wide top `H x b` prefix scores are kept, protected ones first. The total is exactly `H x b`.
 */
export type AdaKvVariant = 'adakv' | 'kvpress';

/** Options of {@link adaKvAllocator}. */
export interface AdaKvAllocatorOptions {
  /**
   * Fraction of each head's average budget it keeps whatever its scores; default 0.2, the value FFY0/AdaKV's
   * `GQA_eval_longbench.sh` uses and recommends under GQA ("we suggest setting floor_alpha to 0.2 while using
   * gqa") and kvpress's `alpha_safeguard` default. (The AdaKV README's `config_compress` example uses 0.5.)
   */
  floorAlpha?: number;
  /** Safeguard form; default `adakv`. */
  variant?: AdaKvVariant;
  /**
   * FFY0/AdaKV's `normalize`: weight each head's scores by the share of its score mass its top `b` hold before
   * the layer-wide selection. Default false (the reference scripts' default: `--normalize` is opt-in).
   */
  normalize?: boolean;
  /** FFY0/AdaKV's `skip`: the first `skipLayers` layers keep the uniform budget. Default 0. */
  skipLayers?: number;
}

function normalizeRows(scores: Float32Array, rows: number, length: number, budget: number): Float32Array {
  const weighted = new Float32Array(scores.length);
  const scratch = new Float32Array(length);
  for (let row = 0; row < rows; row++) {
    const base = row * length;
    copyScores(scores, base, length, scratch);
    let total = 0;
    for (let j = 0; j < length; j++) total += scratch[j]!;
    const threshold = kthLargest(scratch, length, budget);
    let top = 0;
    let above = 0;
    for (let j = 0; j < length; j++) {
      const value = scratch[j]!;
      if (value > threshold) {
        top += value;
        above++;
      }
    }
    top += (budget - above) * threshold;
    const weight = total > 0 ? top / total : 1;
    for (let j = 0; j < length; j++) weighted[base + j] = scores[base + j]! * weight;
  }
  return weighted;
}

function protectTop(scores: Float32Array, rows: number, length: number, protectedCount: number): Float32Array {
  const boosted = Float32Array.from(scores);
  if (protectedCount <= 0) return boosted;
  const scratch = new Float32Array(length);
  const kept = new Int32Array(protectedCount);
  for (let row = 0; row < rows; row++) {
    const count = selectTopPositions(scores, row * length, length, protectedCount, scratch, kept, 0);
    for (let i = 0; i < count; i++) boosted[row * length + kept[i]!] = Number.POSITIVE_INFINITY;
  }
  return boosted;
}

/**
 * Ada-KV head-wise budget allocation (Feng et al., "Ada-KV: Optimizing KV Cache Eviction by Adaptive Budget
 * Allocation for Efficient LLM Inference", arXiv 2407.11550, NeurIPS 2025): a layer's budget `H x b` goes to the
 * heads whose scores are highest layer-wide, so concentrated heads give budget to dispersed ones, with an alpha
 * floor per head. `b` comes from `layerBudget` (uniform: Ada-SnapKV; pyramid: Ada-PyramidKV, like Ada-KV's
 * `pyram_mode`). As in the reference, a layer whose `b` exceeds the prefix keeps everything.
 * The reference computes `c_h (1 - alpha) + floor` in float32 before `torch.round`; so does this.
 */
export function adaKvAllocator(layerBudget: LayerBudget, options: AdaKvAllocatorOptions = {}): BudgetAllocator {
  const floorAlpha = options.floorAlpha ?? 0.2;
  const variant = options.variant ?? 'adakv';
  const normalize = options.normalize ?? false;
  const skipLayers = options.skipLayers ?? 0;
  return {
    name: 'ada-kv',
    settings: {
      floorAlpha,
      variant,
      normalize,
      skipLayers,
      layerBudget: { name: layerBudget.name, ...layerBudget.settings },
    },
    allocate(request: AllocationRequest) {
      const { kvHeadCount, prefixLength } = request;
      const budget = Math.max(0, Math.floor(layerBudget.prefixBudget(request)));
      const budgets = new Int32Array(kvHeadCount);
      if (budget > prefixLength) return budgets.fill(prefixLength);
      if (budget === 0 || request.layerIndex < skipLayers) return budgets.fill(budget);
      let scores = request.scores();
      if (normalize) scores = normalizeRows(scores, kvHeadCount, prefixLength, budget);
      if (variant === 'kvpress') {
        const protectedCount = Math.floor(floorAlpha * (budget + request.windowSize)) - request.windowSize;
        const boosted = protectTop(scores, kvHeadCount, prefixLength, protectedCount);
        return countTopPerRow(boosted, kvHeadCount, prefixLength, kvHeadCount * budget);
      }
      const floorCapacity = Math.floor(budget * floorAlpha);
      const counts = countTopPerRow(scores, kvHeadCount, prefixLength, kvHeadCount * budget);
      const keep = Math.fround(1 - floorAlpha);
      for (let head = 0; head < kvHeadCount; head++) {
        const shrunk = Math.fround(Math.fround(counts[head]! * keep) + floorCapacity);
        budgets[head] = roundHalfEven(shrunk);
      }
      return budgets;
    },
  };
}
