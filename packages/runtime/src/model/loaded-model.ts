/**
 * A model loaded from disk: its architecture, tokenizer and lazily read weights.
 *
 * @packageDocumentation
 */
import type { ModelConfig } from '@fairkv/core';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { ModelWeights } from './model-weights.js';

/** The file formats fairkv loads. */
export type ModelFormat = 'gguf' | 'safetensors';

/** A loaded Llama-family model. Call `close()` to release its file handles. */
export interface LoadedModel {
  /** Where it was loaded from (a GGUF file or a Hugging Face folder). */
  readonly path: string;
  readonly format: ModelFormat;
  /**
   * Architecture. `ropeLayout` is `adjacent` for GGUF (llama.cpp permutes Q/K rows at conversion so
   * RoPE rotates pairs (2i, 2i+1)) and `half-split` for Hugging Face weights (pairs (i, i + headDim/2)).
   */
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  /** Weights by canonical name (weight-names.ts), `[outFeatures, inFeatures]` row-major. */
  readonly weights: ModelWeights;
  /** Free-form description from the file (`general.description`, safetensors `__metadata__.description`). */
  readonly description: string | undefined;
  /**
   * True for fairkv's generated fixture models: random weights that produce gibberish, to be
   * labelled as such wherever the model is shown.
   */
  readonly randomWeights: boolean;
  /** Closes the model's files; later weight reads fail. Idempotent. */
  close(): void;
}

/** Options of the model loaders. */
export interface LoadModelOptions {
  /** Name for `config.name` (default: `general.name`, the folder name or the file name). */
  name?: string;
}

/** Metadata key and value fairkv's fixture generator writes to mark random weights. */
export const RANDOM_WEIGHTS_KEY = 'fairkv.random_weights';
