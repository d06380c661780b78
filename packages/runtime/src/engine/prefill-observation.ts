import type { HostedHead } from './device-shards.js';

/** One owned head's observation data from a prefill. */
export interface HeadObservation {
  kvHead: number;
  /**
   * `[group][T]` column sums of the softmax probabilities of the last `w` prompt queries (the window)
   * of the head's query group.
   */
  windowSums?: Float32Array;
  /** `[group][T]` attention accumulated over every prompt query (H2O). */
  accumulated?: Float32Array;
  /** `[T]` L2 norms of the head's keys. */
  keyNorms?: Float32Array;
}

/** What a prefill returns for the compression policy: the observations of the heads a device owns. */
export interface PrefillObservation {
  /**
   * Per layer, the heads this device owns (the first replica of each head computes its observation);
   * empty when the prefill handed each layer to an {@link OnLayerObserved} callback as it arrived.
   */
  layers: HeadObservation[][];
  /** Last prompt row's logits (logits device only). */
  logits?: Float32Array;
}

/**
 * Receives a prefill's observation of one layer as soon as the device has it (in layer order), so the
 * policy can run for that layer while the device computes the next ones.
 */
export type OnLayerObserved = (layer: number, heads: HeadObservation[]) => void;

/** Inputs of {@link ownedHeadObservations}. */
export interface OwnedObservationInput {
  heads: HostedHead[];
  owned: boolean[];
  groupSize: number;
  headDim: number;
  tokenCount: number;
  needs: { windowRows: number; accumulated: boolean; keyNorms: boolean };
  /** `[localQueryHead][T]` window column sums from the prefill-attention kernel. */
  windowSums?: Float32Array;
  /** `[localQueryHead][T]` accumulated scores from the prefill-attention kernel (H2O). */
  accumulated?: Float32Array;
  /** `[T][localHeads][headDim]` keys (RoPE applied). */
  keys?: Float32Array;
}

/**
 * Cuts the observation data of the heads this device owns out of its prefill outputs: the kernel's
 * window column sums and accumulated scores (column sums of the whole causal softmax), and key norms.
 */
export function ownedHeadObservations(input: OwnedObservationInput): HeadObservation[] {
  const { heads, owned, groupSize: group, headDim, tokenCount: count, needs, windowSums, accumulated, keys } = input;
  const local = heads.length;
  const result: HeadObservation[] = [];
  heads.forEach((head, i) => {
    if (!owned[i]) return;
    const entry: HeadObservation = { kvHead: head.kvHead };
    if (needs.windowRows > 0 && windowSums)
      entry.windowSums = windowSums.slice(i * group * count, (i + 1) * group * count);
    if (needs.accumulated && accumulated)
      entry.accumulated = accumulated.slice(i * group * count, (i + 1) * group * count);
    if (keys) {
      const norms = new Float32Array(count);
      for (let t = 0; t < count; t++) {
        let sum = 0;
        for (let d = 0; d < headDim; d++) sum += keys[(t * local + i) * headDim + d]! ** 2;
        norms[t] = Math.sqrt(sum);
      }
      entry.keyNorms = norms;
    }
    result.push(entry);
  });
  return result;
}
