import { formatIssues, ValidationError, type ValidationIssue } from '@fairkv/core';

/**
 * What one layer's prefill exposes to a compression policy, for one prompt (one request).
 *
 * Head layout follows Hugging Face `repeat_kv` (the layout SnapKV, PyramidKV, Ada-KV and kvpress assume):
 * query head `q` reads kv head `floor(q / group)`, with `group = queryHeadCount / kvHeadCount`, so the query
 * heads of kv head `k` are `k * group ... k * group + group - 1`.
 *
 * All matrices are dense, row-major `Float32Array`s; `seqLen` is the prompt length `n`.
 */
export interface LayerObservation {
  /** Prompt length `n` in tokens; must be at least 1 (an empty prompt has nothing to compress). */
  seqLen: number;
  /** Query (attention) heads of the layer. */
  queryHeadCount: number;
  /** Key/value heads of the layer; divides `queryHeadCount`. */
  kvHeadCount: number;
  /**
   * Observation-window attention, `[queryHead][windowQuery][key]`, shape `[queryHeadCount, W, seqLen]` where
   * `W = windowScores.length / (queryHeadCount * seqLen)` (1 <= W <= seqLen). Row `r` is the query at prompt
   * position `seqLen - W + r` (the last W prompt tokens); each row is that query's causal softmax over keys
   * `0 ... seqLen - W + r` (it sums to 1) and holds 0 for the later keys it cannot see. This is exactly what
   * SnapKV's `update_kv` computes (`softmax(q[-w:] k^T / sqrt(d) + causal mask)`) and what the kernels
   * package's prefill attention writes. Needed by window-scoring policies (SnapKV, PyramidKV, Ada-KV, HeadKV)
   * with `W >= their window`; policies use the last `window` rows.
   */
  windowScores?: Float32Array;
  /**
   * Optional device-side reduction of `windowScores`: `[queryHead][key]`, shape `[queryHeadCount, seqLen]`, the
   * column sums over the last `windowAttentionRows` window rows (`sum over r of windowScores[h][W - rows + r][key]`).
   * A prefill kernel can emit these instead of the full `[queryHead][W][seqLen]` block (32x less to copy and read);
   * the SnapKV scorer uses them when `windowAttentionRows` equals its window, and `windowScores` otherwise.
   */
  windowAttentionSums?: Float32Array;
  /** Window rows summed into `windowAttentionSums` (1 <= rows <= seqLen); required with it. */
  windowAttentionRows?: number;
  /** L2 norm of every key, `[kvHead][key]`, shape `[kvHeadCount, seqLen]` (KNorm-style scoring). */
  keyNorms?: Float32Array;
  /**
   * Attention accumulated over all prompt queries, `[queryHead][key]`, shape `[queryHeadCount, seqLen]`:
   * `sum over queries i >= key of softmax_i[key]` (the column sums of the causal attention matrix, H2O's
   * `hh_score` after prefill). Needed by H2O.
   */
  accumulatedAttention?: Float32Array;
}

/** Where a layer sits in the model; PyramidKV and HeadKV budgets depend on it. */
export interface LayerPosition {
  /** 0-based layer index. */
  layerIndex: number;
  /** Layers in the model. */
  layerCount: number;
}

/** Which inputs a policy reads, so the prefill can skip computing the others. */
export interface ObservationRequirements {
  /**
   * Window rows `W` the policy needs: `windowScores` with at least `W` rows, or `windowAttentionSums` over exactly
   * `W` rows (0: neither is read).
   */
  windowRows: number;
  /** Whether `accumulatedAttention` is read. */
  accumulatedAttention: boolean;
  /** Whether `keyNorms` is read. */
  keyNorms: boolean;
}

function positiveInteger(name: string, value: unknown, issues: ValidationIssue[], hint = ''): boolean {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    issues.push({ path: `$.${name}`, message: `expected a positive integer, got ${String(value)}${hint}` });
    return false;
  }
  return true;
}

function checkMatrix(
  name: 'keyNorms' | 'accumulatedAttention' | 'windowAttentionSums',
  value: Float32Array | undefined,
  rows: number,
  rowName: string,
  seqLen: number,
  issues: ValidationIssue[],
): void {
  if (value === undefined) return;
  if (!(value instanceof Float32Array)) {
    issues.push({ path: `$.${name}`, message: 'expected a Float32Array' });
  } else if (value.length !== rows * seqLen) {
    issues.push({
      path: `$.${name}`,
      message: `expected ${rows} ${rowName} x ${seqLen} keys = ${rows * seqLen} values, got ${value.length}`,
    });
  }
}

/**
 * Checks the shapes of an observation (not its values, which would cost a pass over the data).
 * @returns the number of window rows `W` (0 when `windowScores` is absent).
 * @throws ValidationError naming every bad field; an empty prompt (`seqLen` 0) is reported as such.
 */
export function validateLayerObservation(observation: LayerObservation): number {
  const issues: ValidationIssue[] = [];
  const { seqLen, queryHeadCount, kvHeadCount } = observation;
  const seqOk = positiveInteger('seqLen', seqLen, issues, seqLen === 0 ? ' (empty prompt: nothing to compress)' : '');
  const queryOk = positiveInteger('queryHeadCount', queryHeadCount, issues);
  const kvOk = positiveInteger('kvHeadCount', kvHeadCount, issues);
  if (queryOk && kvOk && queryHeadCount % kvHeadCount !== 0) {
    issues.push({
      path: '$.kvHeadCount',
      message: `expected a divisor of queryHeadCount ${queryHeadCount} (grouped-query attention), got ${kvHeadCount}`,
    });
  }
  let windowRows = 0;
  if (seqOk && queryOk && kvOk && issues.length === 0) {
    const scores = observation.windowScores;
    if (scores !== undefined) {
      const perRow = queryHeadCount * seqLen;
      if (!(scores instanceof Float32Array)) {
        issues.push({ path: '$.windowScores', message: 'expected a Float32Array [queryHead][windowQuery][key]' });
      } else if (scores.length === 0 || scores.length % perRow !== 0 || scores.length / perRow > seqLen) {
        issues.push({
          path: '$.windowScores',
          message:
            `expected queryHeadCount ${queryHeadCount} x W x seqLen ${seqLen} values with 1 <= W <= ${seqLen}, ` +
            `got ${scores.length}`,
        });
      } else {
        windowRows = scores.length / perRow;
      }
    }
    if (observation.windowAttentionSums !== undefined) {
      const rows = observation.windowAttentionRows;
      if (typeof rows !== 'number' || !Number.isInteger(rows) || rows < 1 || rows > seqLen) {
        issues.push({
          path: '$.windowAttentionRows',
          message: `expected an integer in [1, ${seqLen}] with windowAttentionSums, got ${String(rows)}`,
        });
      }
      checkMatrix(
        'windowAttentionSums',
        observation.windowAttentionSums,
        queryHeadCount,
        'query heads',
        seqLen,
        issues,
      );
    }
    checkMatrix('keyNorms', observation.keyNorms, kvHeadCount, 'kv heads', seqLen, issues);
    checkMatrix(
      'accumulatedAttention',
      observation.accumulatedAttention,
      queryHeadCount,
      'query heads',
      seqLen,
      issues,
    );
  }
  if (issues.length > 0) throw new ValidationError(`invalid layer observation:\n${formatIssues(issues)}`, issues);
  return windowRows;
}

/**
 * Checks a layer position.
 * @throws ValidationError when `layerIndex` is not in `[0, layerCount)`.
 */
export function validateLayerPosition(position: LayerPosition): void {
  const issues: ValidationIssue[] = [];
  if (positiveInteger('layerCount', position.layerCount, issues)) {
    const { layerIndex, layerCount } = position;
    if (!Number.isInteger(layerIndex) || layerIndex < 0 || layerIndex >= layerCount) {
      issues.push({
        path: '$.layerIndex',
        message: `expected an integer in [0, ${layerCount - 1}], got ${layerIndex}`,
      });
    }
  }
  if (issues.length > 0) throw new ValidationError(`invalid layer position:\n${formatIssues(issues)}`, issues);
}
