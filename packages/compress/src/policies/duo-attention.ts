import { type DuoAttentionSelection, selectRetrievalHeads, type ValidationIssue } from '@fairkv/core';
import { retrievalStreamingAllocator } from '../allocators/retrieval-streaming-allocator.js';
import { type CompressionPolicy, checkInteger, checkRange, composePolicy, throwIfIssues } from '../compose-policy.js';
import { positionScorer } from '../scorers/position-scorer.js';

/** Options of {@link duoAttentionPolicy}; defaults from DuoAttention's released `config.json` files. */
export interface DuoAttentionOptions {
  /** Gate values `[layer][kvHead]` (`parseDuoAttentionGates` of a `full_attention_heads.tsv`, @fairkv/core). */
  gates: number[][];
  /** Retrieval-head selection: `{ threshold }` (default `{ threshold: 0.5 }`) or a `{ sparsity }` quantile. */
  selection?: DuoAttentionSelection;
  /** Sink tokens a streaming head keeps; default 128 (`sink_size`). */
  sinkSize?: number;
  /** Recent tokens a streaming head keeps; default 256 (`recent_size`). */
  recentSize?: number;
  /** Source of the gates, recorded in settings. */
  gatesSource?: string;
}

/**
 * DuoAttention (Xiao et al., ICLR 2025, arXiv 2410.10819; mit-han-lab/duo-attention): retrieval heads, chosen
 * from trained gate values by @fairkv/core's `selectRetrievalHeads`, keep the whole prompt; streaming heads keep
 * `sinkSize + recentSize` tokens. Reads no attention.
 * @throws ConfigError for invalid options.
 */
export function duoAttentionPolicy(options: DuoAttentionOptions): CompressionPolicy {
  const selection = options.selection ?? { threshold: 0.5 };
  const sinkSize = options.sinkSize ?? 128;
  const recentSize = options.recentSize ?? 256;
  const issues: ValidationIssue[] = [];
  checkInteger('sinkSize', sinkSize, 0, issues);
  checkInteger('recentSize', recentSize, 0, issues);
  if (!Array.isArray(options.gates) || options.gates.length === 0 || (options.gates[0]?.length ?? 0) === 0) {
    issues.push({ path: '$.gates', message: 'expected one row of kv-head gate values per layer' });
  }
  if ('sparsity' in selection) checkRange('selection.sparsity', selection.sparsity, 0, 1, issues);
  else if (!Number.isFinite(selection.threshold)) {
    issues.push({ path: '$.selection.threshold', message: `expected a finite number, got ${selection.threshold}` });
  }
  throwIfIssues('duo-attention', issues);
  const retrieval = selectRetrievalHeads(options.gates, selection);
  return composePolicy({
    name: 'duo-attention',
    settings: { ...selection, sinkSize, recentSize, gates: options.gatesSource ?? 'in-memory gates' },
    window: recentSize,
    scorer: positionScorer(),
    allocator: retrievalStreamingAllocator(retrieval, sinkSize),
  });
}
