/**
 * The shape of a conformance case: data (kernel, name, stored dtype, head dim, size ranges) plus
 * the function that builds fresh random inputs, runs the kernel and checks it against float64.
 *
 * @packageDocumentation
 */
import type { DType, KernelName } from '@fairkv/core';
import { roundToDType } from '../half-precision.js';
import type { CaseContext } from './harness.js';
import type { Random } from './random.js';

/** A size: fixed, or an inclusive `[min, max]` range drawn fresh on every run. */
export type SizeSpec = number | readonly [number, number];

/** Draws a size. */
export function drawSize(random: Random, spec: SizeSpec): number {
  return typeof spec === 'number' ? spec : random.integer(spec[0], spec[1]);
}

/** Renders a size spec for test names: `7` or `1..300`. */
export function formatSize(spec: SizeSpec): string {
  return typeof spec === 'number' ? String(spec) : `${spec[0]}..${spec[1]}`;
}

/** One conformance case. */
export interface ConformanceCase {
  kernel: KernelName;
  /** Shape summary, e.g. `rows=7 inner=1..300 outer=1..70`. */
  name: string;
  /** Dtype of the stored operands (weights, KV pool); `f32` when the kernel has none. */
  storageDType: DType;
  /** Head dim, for kernels the backend may restrict (`capabilities.headDims`). */
  headDim?: number;
  /** Builds fresh inputs from `random`, runs the kernel, and throws on any mismatch. */
  execute(context: CaseContext, random: Random, tolerance: number): Promise<void>;
}

/** `values` rounded to `dtype` and widened to float64: what the backend stores and the reference reads. */
export function roundedCopy(dtype: DType, values: Float32Array): Float64Array {
  return Float64Array.from(values, (value) => roundToDType(dtype, value));
}

/** The cartesian product of option lists, as objects. */
export function product<T extends Record<string, readonly unknown[]>>(options: T): { [K in keyof T]: T[K][number] }[] {
  let rows: Record<string, unknown>[] = [{}];
  for (const [key, values] of Object.entries(options)) {
    rows = rows.flatMap((row) => values.map((value) => ({ ...row, [key]: value })));
  }
  return rows as { [K in keyof T]: T[K][number] }[];
}
