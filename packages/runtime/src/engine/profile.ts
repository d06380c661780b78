import { aggregateProfile, type CompressionPolicy, type PromptCompression } from '@fairkv/compress';
import { type DType, type HeadLoadProfile, type Plan, ValidationError } from '@fairkv/core';
import type { LoadedModel } from '../model/loaded-model.js';
import { type CreateEngineOptions, createInferenceEngine } from './create-engine.js';

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
  /**
   * Backend the prefills run on, as {@link CreateEngineOptions.backend} takes it (e.g.
   * `cudaWorkerBackend()` of `@fairkv/kernels-cuda` with `execution: 'workers'`). Default: the CPU
   * backend in this thread.
   */
  backend?: CreateEngineOptions['backend'];
  /**
   * Placement the prefills run under (default: every head on one device). Give the plan the loads are
   * observed under, e.g. the contiguous plan of the devices a benchmark runs on, where the model does
   * not fit one device.
   */
  plan?: Plan;
  /** Default: `inline` without `backend`, else the engine's default (`workers` for several devices). */
  execution?: CreateEngineOptions['execution'];
  /** Dtype of weights and KV during the prefills (default f32). */
  dtype?: DType;
}

/**
 * Measures a model's head-load profile: runs the prefill of every prompt (on the CPU backend unless
 * `backend` names another), applies the compression policy, and aggregates the per-(layer, kv head)
 * kept tokens (mean, p90, max) into a HeadLoadProfile that the placement solvers take (`fairkv profile`).
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
    ...(options.backend === undefined
      ? { execution: options.execution ?? 'inline' }
      : { backend: options.backend, ...(options.execution ? { execution: options.execution } : {}) }),
    ...(options.plan ? { plan: options.plan } : {}),
    ...(options.dtype ? { dtype: options.dtype } : {}),
    maxBatch: 1,
    // a prefill's KV is discarded once its budgets are decided: the pools need no room
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
