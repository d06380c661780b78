import { ConfigError, formatIssues, type ValidationIssue } from '@fairkv/core';
import type { BudgetAllocator } from './allocators/allocator.js';
import type { LayerCompression } from './layer-compression.js';
import {
  type LayerObservation,
  type LayerPosition,
  type ObservationRequirements,
  validateLayerObservation,
  validateLayerPosition,
} from './observation.js';
import type { Scorer } from './scorers/scorer.js';
import type { GroupReduction } from './selection/group-reduction.js';
import { selectTopPositions } from './selection/select-top.js';

/**
 * A KV-cache compression policy: for one layer of one prompt, the tokens each kv head keeps. Build one with
 * a policy factory (`snapKvPolicy`, `adaKvPolicy`, ...) or compose your own with {@link composePolicy}.
 */
export interface CompressionPolicy {
  /** Name recorded in profiles, e.g. `ada-kv`. */
  readonly name: string;
  /** Settings recorded in profiles (JSON-friendly). */
  readonly settings: Record<string, unknown>;
  /** Inputs the policy reads, so the prefill can skip the others. */
  readonly requirements: ObservationRequirements;
  /**
   * Budgets and kept indices for one layer.
   * @throws ValidationError for a malformed observation or position, or a missing input the policy needs.
   */
  compressLayer(observation: LayerObservation, position: LayerPosition): LayerCompression;
}

/** Parts of a composed policy. */
export interface ComposedPolicyOptions {
  /** Policy name recorded in profiles. */
  name: string;
  /** Settings recorded in profiles (JSON-friendly). */
  settings: Record<string, unknown>;
  /** Always-kept tokens at the end of the prompt: a number, or a function of the prompt length (H2O ratios). */
  window: number | ((seqLen: number) => number);
  /** Rates prefix tokens per kv head. */
  scorer: Scorer;
  /** Decides each kv head's prefix budget. */
  allocator: BudgetAllocator;
  /** GQA reduction handed to the scorer; default `mean`. */
  groupReduction?: GroupReduction;
}

/** Checks that `value` is an integer >= `min`, recording an issue under `$.name` otherwise. */
export function checkInteger(name: string, value: unknown, min: number, issues: ValidationIssue[]): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    issues.push({ path: `$.${name}`, message: `expected an integer >= ${min}, got ${String(value)}` });
  }
}

/** Checks that `value` is a finite number in `[min, max]`. */
export function checkRange(name: string, value: unknown, min: number, max: number, issues: ValidationIssue[]): void {
  if (typeof value !== 'number' || !(value >= min && value <= max)) {
    issues.push({ path: `$.${name}`, message: `expected a number in [${min}, ${max}], got ${String(value)}` });
  }
}

/** Throws a ConfigError for `policy` when `issues` is not empty. */
export function throwIfIssues(policy: string, issues: ValidationIssue[]): void {
  if (issues.length > 0) throw new ConfigError(`invalid ${policy} options:\n${formatIssues(issues)}`, issues);
}

/**
 * Composes a scorer and a budget allocator into a policy, the kvpress way (a press = a scorer wrapped by
 * per-layer/per-head budgeting). Per layer: the window is the last `window` tokens (all tokens when the prompt
 * is shorter); the allocator gives each kv head a prefix budget; each head keeps its highest-scored prefix
 * tokens (partial selection, ties to the earliest) plus the window. Heads that keep all or none of the prefix
 * never trigger scoring, so full, streaming and DuoAttention policies read no attention at all.
 */
export function composePolicy(options: ComposedPolicyOptions): CompressionPolicy {
  const { scorer, allocator, window } = options;
  const groupReduction = options.groupReduction ?? 'mean';
  const fixedWindow = typeof window === 'number' ? window : undefined;
  const requirements: ObservationRequirements = {
    windowRows: scorer.input === 'windowScores' ? (fixedWindow ?? 0) : 0,
    accumulatedAttention: scorer.input === 'accumulatedAttention',
    keyNorms: scorer.input === 'keyNorms',
  };
  return {
    name: options.name,
    settings: options.settings,
    requirements,
    compressLayer(observation, position) {
      validateLayerObservation(observation);
      validateLayerPosition(position);
      const { seqLen, kvHeadCount, queryHeadCount } = observation;
      const requested = typeof window === 'number' ? window : window(seqLen);
      const windowSize = Math.min(Math.max(0, Math.floor(requested)), seqLen);
      const prefixLength = seqLen - windowSize;
      let cached: Float32Array | undefined;
      const scores = (): Float32Array => {
        cached ??= scorer.score({ observation, windowSize, prefixLength, groupReduction });
        return cached;
      };
      const prefixBudgets = allocator.allocate({
        layerIndex: position.layerIndex,
        layerCount: position.layerCount,
        queryHeadCount,
        kvHeadCount,
        seqLen,
        windowSize,
        prefixLength,
        scores,
      });
      const budgets = new Int32Array(kvHeadCount);
      const indices: Int32Array[] = [];
      let scratch: Float32Array | undefined;
      for (let head = 0; head < kvHeadCount; head++) {
        const prefixBudget = Math.min(Math.max(0, prefixBudgets[head] ?? 0), prefixLength);
        const kept = new Int32Array(prefixBudget + windowSize);
        if (prefixBudget === prefixLength) {
          for (let j = 0; j < prefixLength; j++) kept[j] = j;
        } else if (prefixBudget > 0) {
          scratch ??= new Float32Array(prefixLength);
          selectTopPositions(scores(), head * prefixLength, prefixLength, prefixBudget, scratch, kept, 0);
        }
        for (let j = 0; j < windowSize; j++) kept[prefixBudget + j] = prefixLength + j;
        budgets[head] = kept.length;
        indices.push(kept);
      }
      return { budgets, indices };
    },
  };
}
