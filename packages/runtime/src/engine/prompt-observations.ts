import type { LayerObservation } from '@fairkv/compress';
import { type ModelConfig, queryGroupSize } from '@fairkv/core';
import type { HeadObservation } from './prefill-observation.js';

/**
 * Assembles one layer's observation, as a compression policy reads it, from what each device returned
 * for the heads it owns in that layer: window column sums `[queryHead][T]` over the last
 * `min(windowRows, T)` rows (`windowAttentionSums`), accumulated attention `[queryHead][T]` and key norms
 * `[kvHead][T]` in the model's global head order.
 */
export function assembleLayerObservation(
  config: ModelConfig,
  tokenCount: number,
  perDevice: readonly (readonly HeadObservation[])[],
  windowRows: number,
): LayerObservation {
  const group = queryGroupSize(config);
  const { queryHeadCount, kvHeadCount } = config;
  const rows = Math.min(windowRows, tokenCount);
  const windowSums = rows > 0 ? new Float32Array(queryHeadCount * tokenCount) : undefined;
  let accumulated: Float32Array | undefined;
  let keyNorms: Float32Array | undefined;
  for (const heads of perDevice) {
    for (const head of heads) {
      if (windowSums && head.windowSums) windowSums.set(head.windowSums, head.kvHead * group * tokenCount);
      if (head.accumulated) {
        accumulated ??= new Float32Array(queryHeadCount * tokenCount);
        accumulated.set(head.accumulated, head.kvHead * group * tokenCount);
      }
      if (head.keyNorms) {
        keyNorms ??= new Float32Array(kvHeadCount * tokenCount);
        keyNorms.set(head.keyNorms, head.kvHead * tokenCount);
      }
    }
  }
  return {
    seqLen: tokenCount,
    queryHeadCount,
    kvHeadCount,
    ...(windowSums ? { windowAttentionSums: windowSums, windowAttentionRows: rows } : {}),
    ...(accumulated ? { accumulatedAttention: accumulated } : {}),
    ...(keyNorms ? { keyNorms } : {}),
  };
}
