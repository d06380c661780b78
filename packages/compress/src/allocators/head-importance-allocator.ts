import { ConfigError, formatIssues, ValidationError, type ValidationIssue } from '@fairkv/core';
import { roundHalfEven } from '../selection/round-half-even.js';
import type { AllocationRequest, BudgetAllocator } from './allocator.js';

/** Options of {@link headImportanceAllocator}. */
export interface HeadImportanceAllocatorOptions {
  /**
   * Static importance per head, `[layer][head]`, one row per layer; `head` counts either kv heads or query heads
   * (query heads are summed into their kv head after normalisation). Non-negative, positive total. HeadKV reads
   * it from its `*_retrieval_reasoning_heads.json` (see `parseHeadKvImportance`).
   */
  importance: number[][];
  /** Average tokens kept per kv head, window included (HeadKV's `max_capacity_prompt`). */
  averageBudget: number;
  /**
   * Size of the shared pool: each head gives `floor(base / beta)` of its base budget to it. Default 1.005, the
   * first value of the sweep `(1.005 1.01 1.1 1.2 1.5 2 5 10)` in FYYFU/HeadKV `head_start_llama3.sh`, the one its
   * LongBench loop runs. Must be >= 1.
   */
  beta?: number;
  /** Sharpening exponent on the normalised importance; default 1 (`temp=1` in every HeadKV script). */
  temperature?: number;
}

/**
 * Turns importance rows into shares per (layer, kv head) summing to 1: normalise, raise to `temperature`,
 * normalise again (HeadKV), then sum query heads into their kv head.
 */
function importanceShares(importance: number[][], temperature: number, kvHeadCount: number): number[][] {
  const total = importance.reduce((sum, row) => sum + row.reduce((a, b) => a + b, 0), 0);
  const powered = importance.map((row) => row.map((value) => (value / total) ** temperature));
  const poweredTotal = powered.reduce((sum, row) => sum + row.reduce((a, b) => a + b, 0), 0);
  return powered.map((row) => {
    const group = row.length / kvHeadCount;
    return Array.from({ length: kvHeadCount }, (_, kvHead) => {
      let share = 0;
      for (let member = 0; member < group; member++) share += row[kvHead * group + member]! / poweredTotal;
      return share;
    });
  });
}

/**
 * HeadKV head-level budgets (Fu et al., "Not All Heads Matter: A Head-Level KV Cache Compression Method with
 * Integrated Retrieval and Reasoning", ICLR 2025, arXiv 2410.19258; FYYFU/HeadKV `ReasonSnapKVCluster`): with
 * `base = averageBudget - window`, every head gives `floor(base / beta)` tokens to a pool shared by all
 * `layers x heads`, and gets back its importance share of it:
 * `budget = round(share x floor(base / beta) x layers x heads + base - floor(base / beta))`.
 * Budgets are static (independent of the prompt) and differ across layers. As in the reference, a prompt whose
 * prefix is shorter than `base` is kept whole.
 * @throws ConfigError for bad importance rows or options.
 */
export function headImportanceAllocator(options: HeadImportanceAllocatorOptions): BudgetAllocator {
  const { importance, averageBudget } = options;
  const beta = options.beta ?? 1.005;
  const temperature = options.temperature ?? 1;
  const issues: ValidationIssue[] = [];
  if (!Array.isArray(importance) || importance.length === 0) {
    issues.push({ path: '$.importance', message: 'expected one row of head importance per layer' });
  } else {
    const width = importance[0]!.length;
    importance.forEach((row, layer) => {
      if (row.length !== width || width === 0) {
        issues.push({
          path: `$.importance[${layer}]`,
          message: `expected ${width} heads like row 0, got ${row.length}`,
        });
      }
      row.forEach((value, head) => {
        if (!(Number.isFinite(value) && value >= 0)) {
          issues.push({
            path: `$.importance[${layer}][${head}]`,
            message: `expected a finite number >= 0, got ${value}`,
          });
        }
      });
    });
    if (issues.length === 0 && !(importance.flat().reduce((a, b) => a + b, 0) > 0)) {
      issues.push({ path: '$.importance', message: 'expected a positive total importance, got 0' });
    }
  }
  if (!(beta >= 1)) issues.push({ path: '$.beta', message: `expected a number >= 1, got ${beta}` });
  if (!(Number.isFinite(temperature) && temperature > 0)) {
    issues.push({ path: '$.temperature', message: `expected a number > 0, got ${temperature}` });
  }
  if (issues.length > 0) throw new ConfigError(`invalid headkv options:\n${formatIssues(issues)}`, issues);
  const sharesByKvHeads = new Map<number, number[][]>();
  return {
    name: 'head-importance',
    settings: { averageBudget, beta, temperature },
    allocate(request: AllocationRequest) {
      const { layerIndex, layerCount, kvHeadCount, queryHeadCount, prefixLength, windowSize } = request;
      const width = importance[0]!.length;
      if (importance.length !== layerCount || (width !== kvHeadCount && width !== queryHeadCount)) {
        const message =
          `head importance is ${importance.length} layers x ${width} heads; the model has ${layerCount} layers x ` +
          `${kvHeadCount} kv heads (${queryHeadCount} query heads)`;
        throw new ValidationError(message, [{ path: '$.importance', message }]);
      }
      let shares = sharesByKvHeads.get(kvHeadCount);
      if (!shares) {
        shares = importanceShares(importance, temperature, kvHeadCount);
        sharesByKvHeads.set(kvHeadCount, shares);
      }
      const base = averageBudget - windowSize;
      const budgets = new Int32Array(kvHeadCount);
      if (base > prefixLength) return budgets.fill(prefixLength);
      const pooled = Math.floor(base / beta);
      const pool = pooled * layerCount * kvHeadCount;
      for (let head = 0; head < kvHeadCount; head++) {
        budgets[head] = Math.max(0, roundHalfEven(shares[layerIndex]![head]! * pool + base - pooled));
      }
      return budgets;
    },
  };
}
