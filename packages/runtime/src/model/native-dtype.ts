/**
 * The device dtype in which a model's matrices keep the precision they are stored in: what a GPU
 * deployment runs by default (vLLM's `--dtype auto` keeps a checkpoint's bf16 or f16; llama.cpp's GPU
 * backends dequantise ggml's quantised blocks to f16).
 *
 * @packageDocumentation
 */
import type { DType } from '@fairkv/core';
import type { LoadedModel } from './loaded-model.js';
import { LAYER_WEIGHT_KINDS, layerWeightName } from './weight-names.js';

/**
 * The types a model's matrices are stored in (every layer's projections and the output head; not the
 * norms, which are vectors), lower-cased, in order of first appearance: `['bf16']`, `['q4_k', 'q6_k']`.
 */
export function matrixStoredTypes(model: Pick<LoadedModel, 'config' | 'weights'>): string[] {
  const kinds = LAYER_WEIGHT_KINDS.filter((kind) => !kind.endsWith('Norm'));
  const types = new Set<string>();
  for (let layer = 0; layer < model.config.layerCount; layer++) {
    for (const kind of kinds) types.add(model.weights.info(layerWeightName(layer, kind)).storedType.toLowerCase());
  }
  types.add(model.weights.info('output').storedType.toLowerCase());
  return [...types];
}

/** True for ggml's quantised block types (`q8_0`, `q4_K`, ...): integers times 16-bit scales. */
function isQuantised(storedType: string): boolean {
  return /^(q|iq|tq)\d/.test(storedType);
}

/**
 * The dtype that holds a model's matrices (every layer's projections and the output head) without
 * widening them, for devices that compute in 16 bits:
 * - `bf16` or `f16` when they are stored in that type (a Hugging Face bf16 checkpoint, an f16 GGUF),
 *   quantised blocks allowed beside them;
 * - `f16` when they are all in ggml's quantised block types (8-bit or smaller integers times f16
 *   scales: f16's 11-bit significand keeps more of them than bf16's 8; llama.cpp's choice on GPUs);
 * - `f32` when any is stored in f32 or f64 (narrowing would round them), or when both 16-bit types
 *   occur (neither holds the other's values).
 */
export function nativeDtype(model: Pick<LoadedModel, 'config' | 'weights'>): DType {
  const halves = matrixStoredTypes(model).filter((type) => !isQuantised(type));
  if (halves.length === 0) return 'f16';
  if (halves.length === 1 && (halves[0] === 'bf16' || halves[0] === 'f16')) return halves[0];
  return 'f32';
}
