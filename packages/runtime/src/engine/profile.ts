import { aggregateProfile, type CompressionPolicy, type PromptCompression } from '@fairkv/compress';
import { type HeadLoadProfile, ValidationError } from '@fairkv/core';
import type { LoadedModel } from '../model/loaded-model.js';
import { createInferenceEngine } from './create-engine.js';

/** Options of {@link profileHeadLoads}. */
export interface ProfileHeadLoadsOptions {
  model: LoadedModel;
  /** Prompts as text (encoded with the model's tokenizer) or token ids. */
  prompts: readonly (string | readonly number[])[];
  policy: CompressionPolicy;
  /** Tokens each request generates after its prompt; added to every head's budget. Default 0. */
  generatedTokens?: number;
  /** Context requests reach; default: the longest prompt plus `generatedTokens`. */
  contextLength?: number;
  /** Recorded as the profile's source. */
  source?: string;
  /** Called after each prompt. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/**
 * Measures a model's head-load profile: runs the prefill of every prompt on the CPU backend, applies
 * the compression policy, and aggregates the per-(layer, kv head) kept tokens (mean, p90, max) into a
 * HeadLoadProfile that the placement solvers take (`fairkv profile`).
 * @throws ValidationError for no prompts or a prompt longer than the model's context.
 */
export async function profileHeadLoads(options: ProfileHeadLoadsOptions): Promise<HeadLoadProfile> {
  const { model, prompts, policy } = options;
  if (prompts.length === 0)
    throw new ValidationError('prompts: expected at least one prompt, got none', [
      { path: '$.prompts', message: 'empty' },
    ]);
  const generatedTokens = options.generatedTokens ?? 0;
  const engine = await createInferenceEngine({
    model,
    policy,
    execution: 'inline',
    maxBatch: 1,
    kvTokensPerDevice: 16,
  });
  const results: PromptCompression[] = [];
  try {
    for (const [index, prompt] of prompts.entries()) {
      if (options.signal?.aborted) throw options.signal.reason ?? new Error('profile cancelled');
      try {
        results.push(await engine.compress(prompt));
      } catch (error) {
        if (error instanceof ValidationError)
          throw new ValidationError(
            `prompts[${index}]: ${error.message}`,
            error.issues.map((issue) => ({ ...issue, path: issue.path.replace('$.prompt', `$.prompts[${index}]`) })),
          );
        throw error;
      }
      options.onProgress?.(index + 1, prompts.length);
    }
  } finally {
    await engine.dispose();
  }
  const longest = Math.max(...results.map((result) => result.seqLen));
  return aggregateProfile(results, {
    contextLength: options.contextLength ?? longest + generatedTokens,
    policy: { name: policy.name, settings: policy.settings },
    source: options.source ?? `measured on ${prompts.length} prompts of ${model.config.name}`,
    model: model.config.name,
    generatedTokens,
  });
}
