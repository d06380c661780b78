import type { LayerObservation } from '@fairkv/compress';
import { type ModelConfig, queryGroupSize } from '@fairkv/core';
import type { PrefillObservation } from './device-executor.js';

/**
 * Assembles the per-layer observations a compression policy reads from what each device returned for
 * the heads it owns: window column sums `[queryHead][T]` over the last `min(windowRows, T)` rows
 * (`windowAttentionSums`), accumulated attention `[queryHead][T]` and key norms `[kvHead][T]` in the
 * model's global head order.
 */
export function assembleObservations(
  config: ModelConfig,
  tokenCount: number,
  perDevice: PrefillObservation[],
  windowRows: number,
): LayerObservation[] {
  const group = queryGroupSize(config);
  const { queryHeadCount, kvHeadCount, layerCount } = config;
  const observations: LayerObservation[] = [];
  for (let l = 0; l < layerCount; l++) {
    const rows = Math.min(windowRows, tokenCount);
    const windowSums = rows > 0 ? new Float32Array(queryHeadCount * tokenCount) : undefined;
    let accumulated: Float32Array | undefined;
    let keyNorms: Float32Array | undefined;
    for (const device of perDevice) {
      for (const head of device.layers[l] ?? []) {
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
    observations.push({
      seqLen: tokenCount,
      queryHeadCount,
      kvHeadCount,
      ...(windowSums ? { windowAttentionSums: windowSums, windowAttentionRows: rows } : {}),
      ...(accumulated ? { accumulatedAttention: accumulated } : {}),
      ...(keyNorms ? { keyNorms } : {}),
    });
  }
  return observations;
}
