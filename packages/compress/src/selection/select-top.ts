import { copyScores, kthLargest } from './kth-largest.js';

/**
 * Top-k selection by partial selection instead of a full sort: writes to `out[outOffset, outOffset + m)`
 * the positions `j` in `[0, length)` of the `m = min(k, length)` highest `scores[offset + j]`, in ascending
 * position order, and returns `m`.
 *
 * Ties at the threshold go to the earliest positions. (`torch.topk`, used by every reference implementation,
 * leaves tie order unspecified; choosing the earliest makes results reproducible across backends.)
 * NaN scores rank below every number. Cost: one copy, one quickselect and two scans, O(length) expected.
 *
 * @param scratch - at least `length` floats, overwritten
 */
export function selectTopPositions(
  scores: Float32Array,
  offset: number,
  length: number,
  k: number,
  scratch: Float32Array,
  out: Int32Array,
  outOffset = 0,
): number {
  if (k <= 0 || length <= 0) return 0;
  if (k >= length) {
    for (let j = 0; j < length; j++) out[outOffset + j] = j;
    return length;
  }
  copyScores(scores, offset, length, scratch);
  const threshold = kthLargest(scratch, length, k);
  let above = 0;
  for (let j = 0; j < length; j++) {
    const value = scores[offset + j]!;
    if (value > threshold) above++;
  }
  let tiesLeft = k - above;
  let written = outOffset;
  for (let j = 0; j < length; j++) {
    let value = scores[offset + j]!;
    if (Number.isNaN(value)) value = Number.NEGATIVE_INFINITY;
    if (value > threshold) {
      out[written++] = j;
    } else if (value === threshold && tiesLeft > 0) {
      out[written++] = j;
      tiesLeft--;
    }
  }
  return k;
}

/**
 * Counts, per row of a `[rows][length]` score matrix, how many of the `k` highest scores of the whole
 * matrix fall in that row: the layer-wide top-k over all heads' flattened scores that Ada-KV allocates
 * budgets with. Ties at the threshold go to earlier rows, then earlier positions (flattened order).
 */
export function countTopPerRow(scores: Float32Array, rows: number, length: number, k: number): Int32Array {
  const counts = new Int32Array(rows);
  const total = rows * length;
  if (k <= 0) return counts;
  if (k >= total) return counts.fill(length);
  const scratch = new Float32Array(total);
  copyScores(scores, 0, total, scratch);
  const threshold = kthLargest(scratch, total, k);
  let above = 0;
  for (let row = 0; row < rows; row++) {
    let count = 0;
    const base = row * length;
    for (let j = 0; j < length; j++) if (scores[base + j]! > threshold) count++;
    counts[row] = count;
    above += count;
  }
  let tiesLeft = k - above;
  for (let row = 0; row < rows && tiesLeft > 0; row++) {
    const base = row * length;
    for (let j = 0; j < length && tiesLeft > 0; j++) {
      let value = scores[base + j]!;
      if (Number.isNaN(value)) value = Number.NEGATIVE_INFINITY;
      if (value === threshold) {
        counts[row]!++;
        tiesLeft--;
      }
    }
  }
  return counts;
}
