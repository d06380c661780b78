/**
 * Per-dtype tolerances of the conformance suite and the error measure they bound.
 *
 * @packageDocumentation
 */
import type { DType } from '@fairkv/core';

/**
 * Largest accepted relative error per dtype of the stored operands (weights, KV pool). f32: 1e-5;
 * f16: 2e-3 (a backend may round activations to f16, 2^-11 each); bf16: 1e-2 (2^-8 each).
 * Kernels without stored operands use the f32 tolerance.
 */
export const CONFORMANCE_TOLERANCES: Readonly<Record<DType, number>> = { f32: 1e-5, f16: 2e-3, bf16: 1e-2 };

/** Where and how far a backend's output is from the float64 reference. */
export interface Comparison {
  /** Largest `|actual - expected| / (|expected| + rms(expected))` (Infinity when a NaN is found). */
  maxError: number;
  /** Element of the largest error. */
  worstIndex: number;
  /** Elements that are NaN or infinite where the reference is finite. */
  nonFiniteCount: number;
}

/**
 * Compares `count` elements: the error of element `i` is `|a_i - e_i| / (|e_i| + rms(e))`, a relative
 * error that stays meaningful for elements near zero. With `allowance`, the part of `|a_i - e_i|` up to
 * `allowance[i]` (an absolute bound the contract grants, such as a rounding it permits) is not counted.
 * Any NaN or infinity in `actual` counts as an infinite error: NaN never passes.
 */
export function compareOutputs(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  count = expected.length,
  allowance?: ArrayLike<number>,
): Comparison {
  let sumOfSquares = 0;
  for (let i = 0; i < count; i++) sumOfSquares += expected[i]! * expected[i]!;
  const rms = Math.sqrt(sumOfSquares / Math.max(1, count));
  let maxError = 0;
  let worstIndex = -1;
  let nonFiniteCount = 0;
  for (let i = 0; i < count; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    let error: number;
    if (!Number.isFinite(a) || !Number.isFinite(e)) {
      nonFiniteCount++;
      error = Number.POSITIVE_INFINITY;
    } else {
      const beyond = Math.max(0, Math.abs(a - e) - (allowance === undefined ? 0 : allowance[i]!));
      error = beyond / Math.max(Math.abs(e) + rms, 1e-30);
    }
    if (error > maxError || worstIndex < 0) {
      maxError = error;
      worstIndex = i;
    }
  }
  return { maxError, worstIndex, nonFiniteCount };
}
