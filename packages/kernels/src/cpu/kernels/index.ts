import type { AnyCpuKernel } from '../cpu-kernel.js';
import { addInPlaceKernel } from './add-in-place.js';
import { argmaxKernel } from './argmax.js';
import { embeddingGatherKernel } from './embedding-gather.js';
import { kvAppendKernel } from './kv-append.js';
import { kvCompactKernel } from './kv-compact.js';
import { matmulKernel } from './matmul.js';
import { prefillAttentionKernel } from './prefill-attention.js';
import { raggedDecodeAttentionKernel } from './ragged-decode-attention.js';
import { rmsNormKernel } from './rms-norm.js';
import { ropeKernel } from './rope.js';
import { swigluKernel } from './swiglu.js';
import { topPSampleKernel } from './top-p-sample.js';

/** Every kernel of the CPU backend; `CpuBackend` registers this list in its constructor. */
export const CPU_KERNELS: readonly AnyCpuKernel[] = [
  embeddingGatherKernel,
  rmsNormKernel,
  matmulKernel,
  ropeKernel,
  swigluKernel,
  addInPlaceKernel,
  prefillAttentionKernel,
  kvAppendKernel,
  kvCompactKernel,
  raggedDecodeAttentionKernel,
  argmaxKernel,
  topPSampleKernel,
];
