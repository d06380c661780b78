/**
 * Small dense loops the CPU kernels share (dot product, scaled add). Kept as tiny functions so V8
 * inlines them into each kernel's hot loop; unrolled by four with independent accumulators.
 *
 * @packageDocumentation
 */

/** `sum_d a[aOffset + d] * b[bOffset + d]` for `d < length`, accumulated in f64. */
export function dot(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, length: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let d = 0;
  for (; d + 4 <= length; d += 4) {
    s0 += a[aOffset + d]! * b[bOffset + d]!;
    s1 += a[aOffset + d + 1]! * b[bOffset + d + 1]!;
    s2 += a[aOffset + d + 2]! * b[bOffset + d + 2]!;
    s3 += a[aOffset + d + 3]! * b[bOffset + d + 3]!;
  }
  for (; d < length; d++) s0 += a[aOffset + d]! * b[bOffset + d]!;
  return s0 + s1 + s2 + s3;
}

/** `y[yOffset + d] += weight * x[xOffset + d]` for `d < length`, with an f64 accumulator `y`. */
export function scaledAdd(
  weight: number,
  x: Float32Array,
  xOffset: number,
  y: Float64Array,
  yOffset: number,
  length: number,
): void {
  let d = 0;
  for (; d + 4 <= length; d += 4) {
    y[yOffset + d] = y[yOffset + d]! + weight * x[xOffset + d]!;
    y[yOffset + d + 1] = y[yOffset + d + 1]! + weight * x[xOffset + d + 1]!;
    y[yOffset + d + 2] = y[yOffset + d + 2]! + weight * x[xOffset + d + 2]!;
    y[yOffset + d + 3] = y[yOffset + d + 3]! + weight * x[xOffset + d + 3]!;
  }
  for (; d < length; d++) y[yOffset + d] = y[yOffset + d]! + weight * x[xOffset + d]!;
}
