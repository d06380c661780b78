import { ValidationError } from '@fairkv/core';
import type { CompressionPolicy } from './compose-policy.js';
import type { PromptCompression } from './layer-compression.js';
import type { LayerObservation } from './observation.js';

/**
 * Runs a policy over every layer of one prompt (observations in layer order). The runtime calls
 * `policy.compressLayer` as each layer's prefill finishes instead, so observations need not coexist.
 * @throws ValidationError when the layers disagree on the prompt length, or there are none.
 */
export function compressPrompt(
  policy: CompressionPolicy,
  observations: readonly LayerObservation[],
): PromptCompression {
  const layerCount = observations.length;
  if (layerCount === 0) {
    throw new ValidationError('compressPrompt: expected one observation per layer, got none', [
      { path: '$', message: 'expected at least one layer' },
    ]);
  }
  const seqLen = observations[0]!.seqLen;
  const layers = observations.map((observation, layerIndex) => {
    if (observation.seqLen !== seqLen) {
      const message = `seqLen ${observation.seqLen} differs from layer 0's ${seqLen}`;
      throw new ValidationError(`compressPrompt: layer ${layerIndex}: ${message}`, [
        { path: `$[${layerIndex}].seqLen`, message },
      ]);
    }
    return policy.compressLayer(observation, { layerIndex, layerCount });
  });
  return { seqLen, layers };
}
