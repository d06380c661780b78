import { decodeHalf } from '../../half-precision.js';
import type { CpuKernel } from '../cpu-kernel.js';

/** Bytes of weight rows kept hot in L2 while every block of input rows passes over them. */
const WEIGHT_TILE_BYTES = 128 * 1024;

/**
 * `output[r][o] = sum_i input[r][i] * weight[o][i]` for rows `[rowStart, rowEnd)` and outputs
 * `[outerStart, outerEnd)` with an f32 weight (or an already decoded tile): 4x4 register blocks,
 * accumulating in f64. `weightRowOffset` is the row of `weight` that holds output `outerStart`.
 */
export function matmulBlock(
  input: Float32Array,
  weight: Float32Array,
  output: Float32Array,
  innerSize: number,
  outerSize: number,
  rowStart: number,
  rowEnd: number,
  outerStart: number,
  outerEnd: number,
  weightRowOffset: number,
): void {
  let row = rowStart;
  for (; row + 4 <= rowEnd; row += 4) {
    const x0 = row * innerSize;
    const x1 = x0 + innerSize;
    const x2 = x1 + innerSize;
    const x3 = x2 + innerSize;
    let outer = outerStart;
    for (; outer + 4 <= outerEnd; outer += 4) {
      const w0 = (outer - outerStart + weightRowOffset) * innerSize;
      const w1 = w0 + innerSize;
      const w2 = w1 + innerSize;
      const w3 = w2 + innerSize;
      let a00 = 0,
        a01 = 0,
        a02 = 0,
        a03 = 0,
        a10 = 0,
        a11 = 0,
        a12 = 0,
        a13 = 0;
      let a20 = 0,
        a21 = 0,
        a22 = 0,
        a23 = 0,
        a30 = 0,
        a31 = 0,
        a32 = 0,
        a33 = 0;
      for (let i = 0; i < innerSize; i++) {
        const b0 = weight[w0 + i]!;
        const b1 = weight[w1 + i]!;
        const b2 = weight[w2 + i]!;
        const b3 = weight[w3 + i]!;
        const c0 = input[x0 + i]!;
        const c1 = input[x1 + i]!;
        const c2 = input[x2 + i]!;
        const c3 = input[x3 + i]!;
        a00 += c0 * b0;
        a01 += c0 * b1;
        a02 += c0 * b2;
        a03 += c0 * b3;
        a10 += c1 * b0;
        a11 += c1 * b1;
        a12 += c1 * b2;
        a13 += c1 * b3;
        a20 += c2 * b0;
        a21 += c2 * b1;
        a22 += c2 * b2;
        a23 += c2 * b3;
        a30 += c3 * b0;
        a31 += c3 * b1;
        a32 += c3 * b2;
        a33 += c3 * b3;
      }
      const o0 = row * outerSize + outer;
      output[o0] = a00;
      output[o0 + 1] = a01;
      output[o0 + 2] = a02;
      output[o0 + 3] = a03;
      const o1 = o0 + outerSize;
      output[o1] = a10;
      output[o1 + 1] = a11;
      output[o1 + 2] = a12;
      output[o1 + 3] = a13;
      const o2 = o1 + outerSize;
      output[o2] = a20;
      output[o2 + 1] = a21;
      output[o2 + 2] = a22;
      output[o2 + 3] = a23;
      const o3 = o2 + outerSize;
      output[o3] = a30;
      output[o3 + 1] = a31;
      output[o3 + 2] = a32;
      output[o3 + 3] = a33;
    }
    for (; outer < outerEnd; outer++) {
      const w = (outer - outerStart + weightRowOffset) * innerSize;
      let a0 = 0,
        a1 = 0,
        a2 = 0,
        a3 = 0;
      for (let i = 0; i < innerSize; i++) {
        const b = weight[w + i]!;
        a0 += input[x0 + i]! * b;
        a1 += input[x1 + i]! * b;
        a2 += input[x2 + i]! * b;
        a3 += input[x3 + i]! * b;
      }
      output[row * outerSize + outer] = a0;
      output[(row + 1) * outerSize + outer] = a1;
      output[(row + 2) * outerSize + outer] = a2;
      output[(row + 3) * outerSize + outer] = a3;
    }
  }
  for (; row < rowEnd; row++) {
    const x = row * innerSize;
    let outer = outerStart;
    for (; outer + 4 <= outerEnd; outer += 4) {
      const w0 = (outer - outerStart + weightRowOffset) * innerSize;
      const w1 = w0 + innerSize;
      const w2 = w1 + innerSize;
      const w3 = w2 + innerSize;
      let a0 = 0,
        a1 = 0,
        a2 = 0,
        a3 = 0;
      for (let i = 0; i < innerSize; i++) {
        const c = input[x + i]!;
        a0 += c * weight[w0 + i]!;
        a1 += c * weight[w1 + i]!;
        a2 += c * weight[w2 + i]!;
        a3 += c * weight[w3 + i]!;
      }
      const o = row * outerSize + outer;
      output[o] = a0;
      output[o + 1] = a1;
      output[o + 2] = a2;
      output[o + 3] = a3;
    }
    for (; outer < outerEnd; outer++) {
      const w = (outer - outerStart + weightRowOffset) * innerSize;
      let a = 0;
      for (let i = 0; i < innerSize; i++) a += input[x + i]! * weight[w + i]!;
      output[row * outerSize + outer] = a;
    }
  }
}

/** Weight rows per tile so that a tile stays in L2 (at least 4). */
export function weightTileRows(innerSize: number): number {
  return Math.max(4, Math.floor(WEIGHT_TILE_BYTES / (4 * innerSize)) & ~3);
}

/**
 * `matmul` on the CPU, cache-blocked: the weight is walked in tiles of rows that fit L2 (decoded
 * once per call from f16/bf16 into an f32 tile), and every block of 4 input rows passes over a tile
 * while it is hot.
 */
export const matmulKernel: CpuKernel<'matmul'> = {
  name: 'matmul',
  run(args, context) {
    const { rowCount, innerSize, outerSize } = args;
    const input = context.f32(args.input);
    const output = context.f32(args.output);
    const weight = context.stored(args.weight);
    const tileRows = weightTileRows(innerSize);
    const tile = weight.dtype === 'f32' ? undefined : context.scratchF32(0, tileRows * innerSize);
    for (let outerStart = 0; outerStart < outerSize; outerStart += tileRows) {
      const outerEnd = Math.min(outerSize, outerStart + tileRows);
      if (weight.dtype === 'f32') {
        matmulBlock(input, weight.data, output, innerSize, outerSize, 0, rowCount, outerStart, outerEnd, outerStart);
      } else {
        decodeHalf(weight.dtype, weight.data, outerStart * innerSize, tile!, 0, (outerEnd - outerStart) * innerSize);
        matmulBlock(input, tile!, output, innerSize, outerSize, 0, rowCount, outerStart, outerEnd, 0);
      }
    }
  },
};
