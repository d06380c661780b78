/** 1-D pooling of SnapKV's smoothing step. */
export type Pooling = 'max' | 'avg';

/**
 * Pools every row of a `[rows][length]` matrix with an odd kernel, stride 1 and padding `kernel >> 1`, with
 * PyTorch's semantics as SnapKV calls them: `max_pool1d` ignores the padding (pads with -inf), `avg_pool1d`
 * counts it (`count_include_pad=True`: the sum of the in-range values divided by the kernel size).
 * Output length equals input length. NaN inputs are skipped by `max` (they rank last in selection anyway).
 *
 * `max` runs van Herk / Gil-Werman: running maxima forward and backward within blocks of `kernel` keys, then
 * one comparison per output, so its cost does not grow with the kernel (the hot path: 8 heads x 32K keys per
 * layer). `avg` sums each window left to right.
 */
export function pool1d(input: Float32Array, rows: number, length: number, kernel: number, mode: Pooling): Float32Array {
  const output = new Float32Array(rows * length);
  if (kernel <= 1) {
    output.set(input.subarray(0, rows * length));
    return output;
  }
  if (mode === 'max') {
    const forward = new Float32Array(length);
    const backward = new Float32Array(length);
    for (let row = 0; row < rows; row++) maxPoolRow(input, row * length, length, kernel, output, forward, backward);
  } else {
    for (let row = 0; row < rows; row++) avgPoolRow(input, row * length, length, kernel, output);
  }
  return output;
}

/** The maximum of `input[base + from ..= base + to]`, NaN skipped (-Infinity when every value is NaN). */
function windowMax(input: Float32Array, base: number, from: number, to: number): number {
  let best = Number.NEGATIVE_INFINITY;
  for (let i = base + from; i <= base + to; i++) {
    const value = input[i]!;
    if (value > best) best = value;
  }
  return best;
}

function maxPoolRow(
  input: Float32Array,
  base: number,
  length: number,
  kernel: number,
  output: Float32Array,
  forward: Float32Array,
  backward: Float32Array,
): void {
  const radius = kernel >> 1;
  // forward[i]: max from i's block start to i; backward[i]: max from i to its block end (NaN never wins).
  for (let start = 0; start < length; start += kernel) {
    const end = Math.min(start + kernel, length);
    let running = Number.NEGATIVE_INFINITY;
    for (let i = start; i < end; i++) {
      const value = input[base + i]!;
      if (value > running) running = value;
      forward[i] = running;
    }
    running = Number.NEGATIVE_INFINITY;
    for (let i = end - 1; i >= start; i--) {
      const value = input[base + i]!;
      if (value > running) running = value;
      backward[i] = running;
    }
  }
  // A full window [j - radius, j + radius] spans one block (then it is that block) or two adjacent ones.
  const interiorEnd = length - radius;
  for (let j = radius; j < interiorEnd; j++) {
    const left = backward[j - radius]!;
    const right = forward[j + radius]!;
    output[base + j] = Math.max(left, right); // neither is NaN (skipped above)
  }
  // Windows clipped by the row's ends, directly.
  const leftEdge = Math.min(radius, length);
  for (let j = 0; j < leftEdge; j++) output[base + j] = windowMax(input, base, 0, Math.min(length - 1, j + radius));
  for (let j = Math.max(leftEdge, interiorEnd); j < length; j++) {
    output[base + j] = windowMax(input, base, Math.max(0, j - radius), length - 1);
  }
}

function avgPoolRow(input: Float32Array, base: number, length: number, kernel: number, output: Float32Array): void {
  const radius = kernel >> 1;
  for (let j = 0; j < length; j++) {
    const from = base + Math.max(0, j - radius);
    const to = base + Math.min(length - 1, j + radius);
    let sum = 0;
    for (let i = from; i <= to; i++) sum += input[i]!;
    output[base + j] = sum / kernel;
  }
}
