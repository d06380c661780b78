/** 1-D pooling of SnapKV's smoothing step. */
export type Pooling = 'max' | 'avg';

/**
 * Pools every row of a `[rows][length]` matrix with an odd kernel, stride 1 and padding `kernel >> 1`, with
 * PyTorch's semantics as SnapKV calls them: `max_pool1d` ignores the padding (pads with -inf), `avg_pool1d`
 * counts it (`count_include_pad=True`: the sum of the in-range values divided by the kernel size).
 * Output length equals input length. NaN inputs are skipped by `max` (they rank last in selection anyway).
 * Edges are clamped per element; the interior runs a fixed-width loop (the hot path: 8 heads x 32K keys).
 */
export function pool1d(input: Float32Array, rows: number, length: number, kernel: number, mode: Pooling): Float32Array {
  const output = new Float32Array(rows * length);
  const radius = kernel >> 1;
  if (kernel <= 1) {
    output.set(input.subarray(0, rows * length));
    return output;
  }
  const interiorEnd = length - radius;
  for (let row = 0; row < rows; row++) {
    const base = row * length;
    for (let j = 0; j < length; j++) {
      const interior = j >= radius && j < interiorEnd;
      const from = base + (interior ? j - radius : Math.max(0, j - radius));
      const to = base + (interior ? j + radius : Math.min(length - 1, j + radius));
      if (mode === 'max') {
        let best = Number.NEGATIVE_INFINITY;
        for (let i = from; i <= to; i++) {
          const value = input[i]!;
          if (value > best) best = value;
        }
        output[base + j] = best;
      } else {
        let sum = 0;
        for (let i = from; i <= to; i++) sum += input[i]!;
        output[base + j] = sum / kernel;
      }
    }
  }
  return output;
}
