import { formatIssues, ValidationError, type ValidationIssue } from './errors.js';
import type { HeadLoadProfile } from './head-load-profile.js';

/** Which heads DuoAttention treats as retrieval heads: gate >= threshold, or a sparsity quantile. */
export type DuoAttentionSelection = { threshold: number } | { sparsity: number };

/** Options of {@link duoAttentionProfile}. Defaults follow DuoAttention's released config.json files. */
export interface DuoAttentionProfileOptions {
  /** Head selection; default `{ threshold: 0.5 }` (the value in the released configs). */
  selection?: DuoAttentionSelection;
  /** Context length a request reaches; retrieval heads keep all of it. */
  contextLength: number;
  /** Attention-sink tokens streaming heads keep (default 128). */
  sinkSize?: number;
  /** Recent tokens streaming heads keep (default 256). */
  recentSize?: number;
  /** Source recorded in the profile (e.g. the file path). */
  source?: string;
  /** Model name recorded in the profile. */
  model?: string;
}

/**
 * Parses a DuoAttention `full_attention_heads.tsv` (rows = layers, tab-separated columns = kv heads,
 * gate values in [0, 1] with tiny negative noise) into a `[layer][kvHead]` matrix.
 * @throws ValidationError naming the line and column of a bad value or a ragged row.
 */
export function parseDuoAttentionGates(text: string, source = 'full_attention_heads.tsv'): number[][] {
  const issues: ValidationIssue[] = [];
  const lines = text.split(/\r?\n/).filter((line) => line.trim().length > 0);
  const rows = lines.map((line, layer) =>
    line
      .trim()
      .split(/\s+/)
      .map((cell, head) => {
        const value = Number(cell);
        if (!Number.isFinite(value)) {
          issues.push({
            path: `$[${layer}][${head}]`,
            message: `line ${layer + 1} column ${head + 1}: not a number: ${JSON.stringify(cell)}`,
          });
        }
        return value;
      }),
  );
  if (rows.length === 0) issues.push({ path: '$', message: 'no rows: expected one row of gate values per layer' });
  const width = rows[0]?.length ?? 0;
  rows.forEach((row, layer) => {
    if (row.length !== width) {
      issues.push({
        path: `$[${layer}]`,
        message: `line ${layer + 1}: expected ${width} columns like line 1, got ${row.length}`,
      });
    }
  });
  if (issues.length > 0)
    throw new ValidationError(`${source}: invalid DuoAttention gate file:\n${formatIssues(issues)}`, issues);
  return rows;
}

/**
 * Marks retrieval heads. With a threshold, a head is a retrieval head when its gate is >= threshold
 * (as DuoAttention's `sparsify_attention_heads`). With a sparsity s, the quantile rule
 * `threshold = quantile(gates, s)` is applied deterministically: heads ranked by gate (ties by layer,
 * then head) and the lowest `ceil(s * (N - 1))` of N become streaming heads, which is what numpy's
 * linear quantile with DuoAttention's tie-breaking noise yields; s >= 1 makes every head streaming.
 */
export function selectRetrievalHeads(gates: number[][], selection: DuoAttentionSelection): boolean[][] {
  if ('threshold' in selection) {
    return gates.map((row) => row.map((gate) => gate >= selection.threshold));
  }
  const { sparsity } = selection;
  const flat = gates.flatMap((row, layer) => row.map((gate, head) => ({ gate, layer, head })));
  const n = flat.length;
  const streamingCount = sparsity >= 1 ? n : sparsity <= 0 ? 0 : Math.ceil(sparsity * (n - 1));
  const order = [...flat].sort((a, b) => a.gate - b.gate || a.layer - b.layer || a.head - b.head);
  const retrieval = gates.map((row) => row.map(() => true));
  for (const entry of order.slice(0, streamingCount)) retrieval[entry.layer]![entry.head] = false;
  return retrieval;
}

function checkOptions(options: DuoAttentionProfileOptions): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const intField = (name: 'contextLength' | 'sinkSize' | 'recentSize', value: number | undefined, min: number) => {
    if (value !== undefined && (!Number.isInteger(value) || value < min)) {
      issues.push({ path: `$.${name}`, message: `expected an integer >= ${min}, got ${value}` });
    }
  };
  intField('contextLength', options.contextLength, 1);
  intField('sinkSize', options.sinkSize, 0);
  intField('recentSize', options.recentSize, 0);
  const selection = options.selection;
  if (selection && 'sparsity' in selection && !(selection.sparsity >= 0 && selection.sparsity <= 1)) {
    issues.push({ path: '$.selection.sparsity', message: `expected a number in [0, 1], got ${selection.sparsity}` });
  }
  if (selection && 'threshold' in selection && !Number.isFinite(selection.threshold)) {
    issues.push({ path: '$.selection.threshold', message: `expected a finite number, got ${selection.threshold}` });
  }
  return issues;
}

/**
 * Builds the head-load profile DuoAttention (Xiao et al., ICLR 2025, arXiv 2410.10819) produces from
 * its trained gate values: retrieval heads keep the full context, streaming heads keep
 * `sink + recent` tokens (capped at the context).
 * @throws ValidationError naming a bad option.
 */
export function duoAttentionProfile(gates: number[][], options: DuoAttentionProfileOptions): HeadLoadProfile {
  const issues = checkOptions(options);
  if (issues.length > 0) throw new ValidationError(`invalid DuoAttention options:\n${formatIssues(issues)}`, issues);
  const selection = options.selection ?? { threshold: 0.5 };
  const sinkSize = options.sinkSize ?? 128;
  const recentSize = options.recentSize ?? 256;
  const context = options.contextLength;
  const streamingTokens = Math.min(sinkSize + recentSize, context);
  const retrieval = selectRetrievalHeads(gates, selection);
  const mean = retrieval.map((row) => row.map((isRetrieval) => (isRetrieval ? context : streamingTokens)));
  return {
    version: 1,
    layerCount: gates.length,
    kvHeadCount: gates[0]?.length ?? 0,
    contextLength: context,
    mean,
    p90: mean.map((row) => [...row]),
    max: mean.map((row) => [...row]),
    sampleCount: 1,
    policy: { name: 'duo-attention', settings: { ...selection, sinkSize, recentSize } },
    source: options.source ?? 'duo-attention gates',
    ...(options.model ? { model: options.model } : {}),
  };
}
