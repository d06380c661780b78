import { reduceGroups } from '../selection/group-reduction.js';
import { missingInput } from './missing-input.js';
import type { Scorer } from './scorer.js';

/**
 * H2O heavy-hitter scoring (Zhang et al., "H2O: Heavy-Hitter Oracle for Efficient Generative Inference of Large
 * Language Models", NeurIPS 2023, arXiv 2306.14048): a key's score is the attention it received from every
 * prompt query, i.e. the column sum of the causal softmax matrix (FMInference/H2O `_update_hh_score`:
 * `attn_score_cache.sum(0).sum(1)`; KVCache-Factory `H2OKVCluster`: `attn_weights[..., :-window].sum(-2)`),
 * reduced over the kv head's query group. No pooling.
 */
export function h2oScorer(): Scorer {
  return {
    name: 'h2o',
    settings: {},
    input: 'accumulatedAttention',
    score({ observation, prefixLength, groupReduction }) {
      const { seqLen, queryHeadCount, kvHeadCount, accumulatedAttention } = observation;
      if (!accumulatedAttention) {
        throw missingInput(
          'h2o',
          'accumulatedAttention',
          `[${queryHeadCount}][${seqLen}] column sums of the prompt attention`,
        );
      }
      return reduceGroups(accumulatedAttention, queryHeadCount, kvHeadCount, prefixLength, seqLen, groupReduction);
    },
  };
}
