import type { ValidationIssue } from '@fairkv/core';
import { uniformAllocator } from '../allocators/uniform-allocator.js';
import { uniformLayerBudget } from '../allocators/uniform-layer-budget.js';
import { type CompressionPolicy, checkInteger, composePolicy, throwIfIssues } from '../compose-policy.js';
import { positionScorer } from '../scorers/position-scorer.js';

/** Options of {@link streamingLlmPolicy}; defaults from mit-han-lab/streaming-llm `run_streaming_llama.py`. */
export interface StreamingLlmOptions {
  /** Attention-sink tokens kept at the start (`--start_size`, default 4; kvpress `n_sink` is 4 too). */
  sinkSize?: number;
  /** Recent tokens kept at the end (`--recent_size`, default 2000). */
  recentSize?: number;
}

/**
 * StreamingLLM (Xiao et al., "Efficient Streaming Language Models with Attention Sinks", ICLR 2024,
 * arXiv 2309.17453): every head keeps the first `sinkSize` and the last `recentSize` tokens. A sink-first
 * scorer with a `recentSize` window and a uniform `sinkSize` prefix budget. Reads no attention.
 * @throws ConfigError for a negative or fractional size.
 */
export function streamingLlmPolicy(options: StreamingLlmOptions = {}): CompressionPolicy {
  const sinkSize = options.sinkSize ?? 4;
  const recentSize = options.recentSize ?? 2000;
  const issues: ValidationIssue[] = [];
  checkInteger('sinkSize', sinkSize, 0, issues);
  checkInteger('recentSize', recentSize, 0, issues);
  throwIfIssues('streaming-llm', issues);
  return composePolicy({
    name: 'streaming-llm',
    settings: { sinkSize, recentSize },
    window: recentSize,
    scorer: positionScorer(),
    allocator: uniformAllocator(uniformLayerBudget(sinkSize + recentSize)),
  });
}
