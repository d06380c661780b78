import type { Scorer } from './scorer.js';

/**
 * Earliest-first scoring (score = -position): with a prefix budget of `s` a head keeps tokens `0 ... s-1`,
 * the attention sinks of StreamingLLM (Xiao et al., "Efficient Streaming Language Models with Attention Sinks",
 * ICLR 2024, arXiv 2309.17453) and of DuoAttention's streaming heads. Reads no attention.
 */
export function positionScorer(): Scorer {
  return {
    name: 'sink-first',
    settings: {},
    input: 'none',
    score({ observation, prefixLength }) {
      const scores = new Float32Array(observation.kvHeadCount * prefixLength);
      for (let head = 0; head < observation.kvHeadCount; head++) {
        for (let j = 0; j < prefixLength; j++) scores[head * prefixLength + j] = -j;
      }
      return scores;
    },
  };
}
