/**
 * A head-load profile from the tokens the engine actually kept for each request (FairKV's workflow:
 * observe the loads under standard tensor parallelism, then re-place the heads).
 *
 * @packageDocumentation
 */
import { aggregateProfile, type CompressionPolicy } from '@fairkv/compress';
import type { HeadLoadProfile } from '@fairkv/core';
import type { GenerationResult } from '@fairkv/runtime';

/**
 * Aggregates the kept tokens of finished requests (`GenerationResult.keptTokens`, per layer and kv
 * head after compression) plus `generatedTokens` into a profile (mean, p90, max over requests).
 */
export function profileFromResults(
  results: readonly GenerationResult[],
  options: { policy: CompressionPolicy; generatedTokens: number; contextLength: number; model: string; source: string },
): HeadLoadProfile {
  return aggregateProfile(
    results.map((result) => ({
      seqLen: result.promptTokenIds.length,
      layers: result.keptTokens.map((row) => ({ budgets: Int32Array.from(row), indices: [] })),
    })),
    {
      contextLength: options.contextLength,
      policy: { name: options.policy.name, settings: options.policy.settings },
      source: options.source,
      model: options.model,
      generatedTokens: options.generatedTokens,
    },
  );
}
