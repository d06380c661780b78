import { formatIssues, ValidationError, type ValidationIssue } from '@fairkv/core';

/**
 * A policy's decision for one layer of one prompt: how many tokens each kv head keeps and which.
 * The runtime copies the kept rows into a ragged per-head cache and frees the rest (unlike kvpress,
 * which only masks them).
 */
export interface LayerCompression {
  /** Tokens kept per kv head (`budgets[h] === indices[h].length`). */
  budgets: Int32Array;
  /** Kept token positions per kv head: sorted ascending, unique, in `[0, seqLen)`; the window is always kept. */
  indices: Int32Array[];
}

/** A policy's decision for a whole prompt: one {@link LayerCompression} per layer, in layer order. */
export interface PromptCompression {
  /** Prompt length the decision was made for. */
  seqLen: number;
  /** Per-layer decisions. */
  layers: LayerCompression[];
}

/**
 * Checks the invariants of a layer decision: budgets match index counts, indices sorted, unique, in range,
 * and the last `windowSize` positions kept by every head.
 * @throws ValidationError listing every violation.
 */
export function validateLayerCompression(result: LayerCompression, seqLen: number, windowSize = 0): void {
  const issues: ValidationIssue[] = [];
  if (result.budgets.length !== result.indices.length) {
    issues.push({
      path: '$.indices',
      message: `expected one index list per kv head (${result.budgets.length}), got ${result.indices.length}`,
    });
  }
  result.indices.forEach((kept, head) => {
    if (kept.length !== result.budgets[head]) {
      issues.push({
        path: `$.indices[${head}]`,
        message: `holds ${kept.length} indices, budget is ${result.budgets[head]}`,
      });
    }
    for (let i = 0; i < kept.length; i++) {
      const position = kept[i]!;
      if (position < 0 || position >= seqLen) {
        issues.push({ path: `$.indices[${head}][${i}]`, message: `position ${position} outside [0, ${seqLen})` });
        break;
      }
      if (i > 0 && position <= kept[i - 1]!) {
        issues.push({ path: `$.indices[${head}][${i}]`, message: `position ${position} not above ${kept[i - 1]}` });
        break;
      }
    }
    const window = Math.min(windowSize, seqLen);
    for (let i = 0; i < window; i++) {
      const expected = seqLen - window + i;
      if (kept[kept.length - window + i] !== expected) {
        issues.push({ path: `$.indices[${head}]`, message: `window position ${expected} not kept` });
        break;
      }
    }
  });
  if (issues.length > 0) throw new ValidationError(`invalid layer compression:\n${formatIssues(issues)}`, issues);
}
