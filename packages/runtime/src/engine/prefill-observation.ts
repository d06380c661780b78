import type { HostedHead } from './device-shards.js';

/** One owned head's observation data from a prefill. */
export interface HeadObservation {
  kvHead: number;
  /** `[group][w][T]` softmax probabilities of the last `w` prompt queries of the head's query group. */
  windowScores?: Float32Array;
  /** `[group][T]` attention accumulated over every prompt query (H2O). */
  accumulated?: Float32Array;
  /** `[T]` L2 norms of the head's keys. */
  keyNorms?: Float32Array;
}

/** What a prefill returns for the compression policy: the observations of the heads a device owns. */
export interface PrefillObservation {
  /** Per layer, the heads this device owns (the first replica of each head computes its observation). */
  layers: HeadObservation[][];
  /** Last prompt row's logits (logits device only). */
  logits?: Float32Array;
}

/** Inputs of {@link ownedHeadObservations}. */
export interface OwnedObservationInput {
  heads: HostedHead[];
  owned: boolean[];
  groupSize: number;
  headDim: number;
  tokenCount: number;
  /** Rows of `scores` per query head (the prefill's window). */
  windowRows: number;
  needs: { windowRows: number; accumulated: boolean; keyNorms: boolean };
  /** `[localQueryHead][windowRows][T]` from the prefill-attention kernel. */
  scores?: Float32Array;
  /** `[localQueryHead][T]` accumulated scores from the prefill-attention kernel (H2O). */
  accumulated?: Float32Array;
  /** `[T][localHeads][headDim]` keys (RoPE applied). */
  keys?: Float32Array;
}

/**
 * Cuts the observation data of the heads this device owns out of its prefill outputs: the last
 * `needs.windowRows` rows of window scores, the kernel's accumulated scores (column sums of the whole
 * causal softmax) and key norms.
 */
export function ownedHeadObservations(input: OwnedObservationInput): HeadObservation[] {
  const {
    heads,
    owned,
    groupSize: group,
    headDim,
    tokenCount: count,
    windowRows,
    needs,
    scores,
    accumulated,
    keys,
  } = input;
  const local = heads.length;
  const result: HeadObservation[] = [];
  heads.forEach((head, i) => {
    if (!owned[i]) return;
    const entry: HeadObservation = { kvHead: head.kvHead };
    if (scores) {
      const perHead = group * windowRows * count;
      const block = scores.subarray(i * perHead, (i + 1) * perHead);
      const keepRows = Math.min(needs.windowRows, windowRows);
      if (keepRows > 0) {
        const window = new Float32Array(group * keepRows * count);
        for (let g = 0; g < group; g++) {
          const from = (g * windowRows + (windowRows - keepRows)) * count;
          window.set(block.subarray(from, from + keepRows * count), g * keepRows * count);
        }
        entry.windowScores = window;
      }
    }
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
