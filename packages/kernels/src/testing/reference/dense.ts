/**
 * Float64 references of the dense kernels (the conformance suite's oracle): straightforward loops
 * in double precision, written for clarity, not speed.
 *
 * @packageDocumentation
 */
import type { RopeLayout } from '@fairkv/core';

type Values = ArrayLike<number>;

/** `table[tokens[r]]` rows. */
export function referenceEmbeddingGather(table: Values, tokens: Values, hiddenSize: number): Float64Array {
  const output = new Float64Array(tokens.length * hiddenSize);
  for (let r = 0; r < tokens.length; r++) {
    for (let h = 0; h < hiddenSize; h++) output[r * hiddenSize + h] = table[tokens[r]! * hiddenSize + h]!;
  }
  return output;
}

/** RMSNorm of each row. */
export function referenceRmsNorm(
  input: Values,
  weight: Values,
  rowCount: number,
  size: number,
  epsilon: number,
): Float64Array {
  const output = new Float64Array(rowCount * size);
  for (let r = 0; r < rowCount; r++) {
    let sum = 0;
    for (let i = 0; i < size; i++) sum += input[r * size + i]! ** 2;
    const inverse = 1 / Math.sqrt(sum / size + epsilon);
    for (let i = 0; i < size; i++) output[r * size + i] = input[r * size + i]! * inverse * weight[i]!;
  }
  return output;
}

/** `input x weight^T`. */
export function referenceMatmul(
  input: Values,
  weight: Values,
  rowCount: number,
  innerSize: number,
  outerSize: number,
): Float64Array {
  const output = new Float64Array(rowCount * outerSize);
  for (let r = 0; r < rowCount; r++) {
    for (let o = 0; o < outerSize; o++) {
      let sum = 0;
      for (let i = 0; i < innerSize; i++) sum += input[r * innerSize + i]! * weight[o * innerSize + i]!;
      output[r * outerSize + o] = sum;
    }
  }
  return output;
}

/** RoPE with a cos/sin table, out of place. */
export function referenceRope(
  data: Values,
  positions: Values,
  table: Values,
  headCount: number,
  headDim: number,
  layout: RopeLayout,
): Float64Array {
  const output = Float64Array.from(data);
  const half = headDim / 2;
  for (let r = 0; r < positions.length; r++) {
    const p = positions[r]!;
    for (let h = 0; h < headCount; h++) {
      const base = (r * headCount + h) * headDim;
      for (let i = 0; i < half; i++) {
        const first = layout === 'adjacent' ? base + 2 * i : base + i;
        const second = layout === 'adjacent' ? first + 1 : first + half;
        const c = table[p * headDim + i]!;
        const s = table[p * headDim + half + i]!;
        output[first] = data[first]! * c - data[second]! * s;
        output[second] = data[first]! * s + data[second]! * c;
      }
    }
  }
  return output;
}

/** `silu(gate) * up`. */
export function referenceSwiglu(gate: Values, up: Values): Float64Array {
  return Float64Array.from(gate, (g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
}

/** `a + b`. */
export function referenceAdd(a: Values, b: Values): Float64Array {
  return Float64Array.from(a, (x, i) => x + b[i]!);
}
