import { ValidationError } from '@fairkv/core';
import type { AllocationRequest, BudgetAllocator } from './allocator.js';

/**
 * DuoAttention's split (Xiao et al., "DuoAttention: Efficient Long-Context LLM Inference with Retrieval and
 * Streaming Heads", ICLR 2025, arXiv 2410.10819): a retrieval head keeps its whole prefix; a streaming head keeps
 * the first `sinkSize` tokens (with a sink-first scorer and a `recent`-token window, StreamingLLM's sink + recent).
 * @param retrieval - `[layer][kvHead]`, true for retrieval heads (e.g. `selectRetrievalHeads` of @fairkv/core)
 */
export function retrievalStreamingAllocator(retrieval: boolean[][], sinkSize: number): BudgetAllocator {
  return {
    name: 'retrieval-streaming',
    settings: { sinkSize },
    allocate({ layerIndex, layerCount, kvHeadCount, prefixLength }: AllocationRequest) {
      const width = retrieval[0]?.length ?? 0;
      if (retrieval.length !== layerCount || width !== kvHeadCount) {
        const message = `retrieval heads are ${retrieval.length} layers x ${width} kv heads; the model has ${layerCount} x ${kvHeadCount}`;
        throw new ValidationError(message, [{ path: '$.gates', message }]);
      }
      const row = retrieval[layerIndex]!;
      return Int32Array.from(row, (isRetrieval) => (isRetrieval ? prefixLength : Math.min(sinkSize, prefixLength)));
    },
  };
}
