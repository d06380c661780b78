import type { ConformanceCase } from '../conformance-case.js';
import { argmaxCases } from './argmax.js';
import { addInPlaceCases, swigluCases } from './elementwise.js';
import { embeddingGatherCases } from './embedding-gather.js';
import { kvAppendCases } from './kv-append.js';
import { kvCompactCases } from './kv-compact.js';
import { matmulCases, matmulSplitCases } from './matmul.js';
import { prefillAttentionCases } from './prefill-attention.js';
import { raggedDecodeAttentionCases } from './ragged-decode-attention.js';
import { rmsNormAddCases, rmsNormCases } from './rms-norm.js';
import { ropeCases } from './rope.js';
import { topPSampleCases } from './top-p-sample.js';

/** Every conformance case, grouped by kernel in contract order. */
export const CONFORMANCE_CASES: readonly ConformanceCase[] = [
  ...embeddingGatherCases,
  ...rmsNormCases,
  ...rmsNormAddCases,
  ...matmulCases,
  ...matmulSplitCases,
  ...ropeCases,
  ...swigluCases,
  ...addInPlaceCases,
  ...prefillAttentionCases,
  ...kvAppendCases,
  ...kvCompactCases,
  ...raggedDecodeAttentionCases,
  ...argmaxCases,
  ...topPSampleCases,
];
