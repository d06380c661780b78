import { type HeadLoadProfile, type ProfilePolicy, ValidationError, validateHeadLoadProfile } from '@fairkv/core';
import type { PromptCompression } from './layer-compression.js';

/** Options of {@link aggregateProfile}. */
export interface AggregateProfileOptions {
  /** Context length (prompt + generated tokens) requests reach; recorded, and no head may keep more. */
  contextLength: number;
  /** The policy that produced the results (a `CompressionPolicy` fits: its `name` and `settings` are used). */
  policy: ProfilePolicy;
  /** Where the results came from, e.g. `measured on 200 LongBench prompts`. */
  source: string;
  /** Model name, when known. */
  model?: string;
  /**
   * Tokens each head gains after prefill (decode appends one per step to every head), added to every budget
   * and capped at `contextLength`. Default 0: the profile holds the prefill budgets.
   */
  generatedTokens?: number;
}

/** Linear-interpolation quantile of sorted values (numpy's default `linear` method). */
function quantileSorted(sorted: Float64Array, q: number): number {
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.min(lower + 1, sorted.length - 1);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}

/**
 * Aggregates many prompts' compression results into a @fairkv/core `HeadLoadProfile`: per (layer, kv head),
 * the mean, 90th percentile (linear interpolation) and maximum of the tokens kept. This is the load FairKV's
 * placement balances.
 * @throws ValidationError when there are no results, their shapes differ, or a head keeps more than `contextLength`.
 */
export function aggregateProfile(
  results: readonly PromptCompression[],
  options: AggregateProfileOptions,
): HeadLoadProfile {
  if (results.length === 0) {
    throw new ValidationError('aggregateProfile: expected at least one prompt result, got none', [
      { path: '$', message: 'no results' },
    ]);
  }
  const layerCount = results[0]!.layers.length;
  const kvHeadCount = results[0]!.layers[0]?.budgets.length ?? 0;
  results.forEach((result, index) => {
    const shapeOk =
      result.layers.length === layerCount && result.layers.every((layer) => layer.budgets.length === kvHeadCount);
    if (!shapeOk) {
      const message = `expected ${layerCount} layers x ${kvHeadCount} kv heads like result 0`;
      throw new ValidationError(`aggregateProfile: result ${index}: ${message}`, [{ path: `$[${index}]`, message }]);
    }
  });
  const extra = options.generatedTokens ?? 0;
  const { contextLength } = options;
  const samples = new Float64Array(results.length);
  const mean: number[][] = [];
  const p90: number[][] = [];
  const max: number[][] = [];
  for (let layer = 0; layer < layerCount; layer++) {
    const meanRow: number[] = [];
    const p90Row: number[] = [];
    const maxRow: number[] = [];
    for (let head = 0; head < kvHeadCount; head++) {
      let sum = 0;
      results.forEach((result, index) => {
        const kept = result.layers[layer]!.budgets[head]! + extra;
        samples[index] = extra > 0 ? Math.min(kept, contextLength) : kept;
        sum += samples[index]!;
      });
      samples.sort();
      meanRow.push(sum / results.length);
      p90Row.push(quantileSorted(samples, 0.9));
      maxRow.push(samples[samples.length - 1]!);
    }
    mean.push(meanRow);
    p90.push(p90Row);
    max.push(maxRow);
  }
  return validateHeadLoadProfile({
    version: 1,
    layerCount,
    kvHeadCount,
    contextLength,
    mean,
    p90,
    max,
    sampleCount: results.length,
    policy: {
      name: options.policy.name,
      settings: { ...options.policy.settings, ...(extra > 0 ? { generatedTokens: extra } : {}) },
    },
    source: options.source,
    ...(options.model ? { model: options.model } : {}),
  });
}
