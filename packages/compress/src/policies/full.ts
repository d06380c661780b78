import { type CompressionPolicy, composePolicy } from '../compose-policy.js';
import { positionScorer } from '../scorers/position-scorer.js';

/** No compression: every kv head keeps the whole prompt. The baseline every other policy is measured against. */
export function fullPolicy(): CompressionPolicy {
  return composePolicy({
    name: 'full',
    settings: {},
    window: 0,
    scorer: positionScorer(),
    allocator: {
      name: 'keep-all',
      settings: {},
      allocate: ({ kvHeadCount, prefixLength }) => new Int32Array(kvHeadCount).fill(prefixLength),
    },
  });
}
