import { missingInput } from './missing-input.js';
import type { Scorer } from './scorer.js';

/**
 * Key-norm scoring (Devoto et al., "A Simple and Effective L2 Norm-Based Strategy for KV Cache Compression",
 * EMNLP 2024, arXiv 2406.11430; kvpress `KnormPress`: `score = -keys.norm(dim=-1)`): keys with a low L2 norm
 * attract attention, so score = -norm. Reads `keyNorms`, already per kv head.
 */
export function keyNormScorer(): Scorer {
  return {
    name: 'knorm',
    settings: {},
    input: 'keyNorms',
    score({ observation, prefixLength }) {
      const { seqLen, kvHeadCount, keyNorms } = observation;
      if (!keyNorms) throw missingInput('knorm', 'keyNorms', `[${kvHeadCount}][${seqLen}] key L2 norms`);
      const scores = new Float32Array(kvHeadCount * prefixLength);
      for (let head = 0; head < kvHeadCount; head++) {
        for (let j = 0; j < prefixLength; j++) scores[head * prefixLength + j] = -keyNorms[head * seqLen + j]!;
      }
      return scores;
    },
  };
}
