import type { DeviceBuffer } from '../../backend.js';
import { f16DecodeTable } from '../../half-precision.js';
import type { CpuKernel } from '../cpu-kernel.js';

/** Weight element encodings `matmulRange` reads: 0 f32, 1 f16 bits, 2 bf16 bits. */
export const WEIGHT_KIND = { f32: 0, f16: 1, bf16: 2 } as const;

/**
 * `output[r][o] = sum_i input[r][i] * weight[o][i]` for every row and the outputs `[outerStart,
 * outerEnd)`, cache-blocked: the weight is walked in tiles of rows that fit L2 (f16/bf16 tiles are
 * decoded once into an f32 tile), and every block of 4 input rows passes over a tile while it is hot,
 * with a 4x4 register block accumulating in f64.
 *
 * Self-contained on purpose (no outside references): the CPU thread pool ships its source to worker
 * threads, which run it on other output ranges of the same shared buffers.
 */
export function matmulRange(
  input: Float32Array,
  weight: Float32Array | Uint16Array,
  weightKind: number,
  f16Table: Float32Array | null,
  output: Float32Array,
  rowCount: number,
  innerSize: number,
  outerSize: number,
  outerStart: number,
  outerEnd: number,
): void {
  const tileRows = Math.max(4, Math.floor((128 * 1024) / (4 * innerSize)) & ~3);
  const tile = weightKind === 0 ? null : new Float32Array(tileRows * innerSize);
  const tileBits = tile === null ? null : new Int32Array(tile.buffer);
  for (let tileStart = outerStart; tileStart < outerEnd; tileStart += tileRows) {
    const tileEnd = Math.min(outerEnd, tileStart + tileRows);
    let w: Float32Array;
    let wBase: number;
    if (tile === null) {
      w = weight as Float32Array;
      wBase = tileStart * innerSize;
    } else {
      const first = tileStart * innerSize;
      const count = (tileEnd - tileStart) * innerSize;
      if (weightKind === 2) for (let i = 0; i < count; i++) tileBits![i] = weight[first + i]! << 16;
      else for (let i = 0; i < count; i++) tile[i] = f16Table![weight[first + i]!]!;
      w = tile;
      wBase = 0;
    }
    let row = 0;
    for (; row + 4 <= rowCount; row += 4) {
      const x0 = row * innerSize;
      const x1 = x0 + innerSize;
      const x2 = x1 + innerSize;
      const x3 = x2 + innerSize;
      let outer = tileStart;
      for (; outer + 4 <= tileEnd; outer += 4) {
        const w0 = wBase + (outer - tileStart) * innerSize;
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
          const b0 = w[w0 + i]!;
          const b1 = w[w1 + i]!;
          const b2 = w[w2 + i]!;
          const b3 = w[w3 + i]!;
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
        const o1 = o0 + outerSize;
        const o2 = o1 + outerSize;
        const o3 = o2 + outerSize;
        output[o0] = a00;
        output[o0 + 1] = a01;
        output[o0 + 2] = a02;
        output[o0 + 3] = a03;
        output[o1] = a10;
        output[o1 + 1] = a11;
        output[o1 + 2] = a12;
        output[o1 + 3] = a13;
        output[o2] = a20;
        output[o2 + 1] = a21;
        output[o2 + 2] = a22;
        output[o2 + 3] = a23;
        output[o3] = a30;
        output[o3 + 1] = a31;
        output[o3 + 2] = a32;
        output[o3 + 3] = a33;
      }
      for (; outer < tileEnd; outer++) {
        const wr = wBase + (outer - tileStart) * innerSize;
        let a0 = 0,
          a1 = 0,
          a2 = 0,
          a3 = 0;
        for (let i = 0; i < innerSize; i++) {
          const b = w[wr + i]!;
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
    for (; row < rowCount; row++) {
      const x = row * innerSize;
      let outer = tileStart;
      for (; outer + 4 <= tileEnd; outer += 4) {
        const w0 = wBase + (outer - tileStart) * innerSize;
        const w1 = w0 + innerSize;
        const w2 = w1 + innerSize;
        const w3 = w2 + innerSize;
        let a0 = 0,
          a1 = 0,
          a2 = 0,
          a3 = 0;
        for (let i = 0; i < innerSize; i++) {
          const c = input[x + i]!;
          a0 += c * w[w0 + i]!;
          a1 += c * w[w1 + i]!;
          a2 += c * w[w2 + i]!;
          a3 += c * w[w3 + i]!;
        }
        const o = row * outerSize + outer;
        output[o] = a0;
        output[o + 1] = a1;
        output[o + 2] = a2;
        output[o + 3] = a3;
      }
      for (; outer < tileEnd; outer++) {
        const wr = wBase + (outer - tileStart) * innerSize;
        let a = 0;
        for (let i = 0; i < innerSize; i++) a += input[x + i]! * w[wr + i]!;
        output[row * outerSize + outer] = a;
      }
    }
  }
}

/** Below this many multiply-adds a matmul stays on the calling thread. */
const PARALLEL_MIN_MULTIPLY_ADDS = 1 << 20;

/**
 * `matmul` on the CPU ({@link matmulRange}); with a thread pool and enough work, the outputs are
 * split into one contiguous range per thread (multiples of 4, so register blocks stay whole).
 */
export const matmulKernel: CpuKernel<'matmul'> = {
  name: 'matmul',
  run(args, context) {
    const { rowCount, innerSize } = args;
    const input = context.f32(args.input);
    const weight = context.stored(args.weight);
    const kind = WEIGHT_KIND[weight.dtype];
    const table = weight.dtype === 'f16' ? (context.parallel?.f16Table ?? f16DecodeTable()) : null;
    const parallel = context.parallel;
    // a fused projection: each output takes the next block of weight rows
    const segments: [DeviceBuffer<'f32'>, number][] = [[args.output, args.outerSize]];
    if (args.output2 && args.outerSize2) segments.push([args.output2, args.outerSize2]);
    if (args.output3 && args.outerSize3) segments.push([args.output3, args.outerSize3]);
    let firstRow = 0;
    for (const [buffer, outerSize] of segments) {
      const output = context.f32(buffer);
      const rows = weight.data.subarray(firstRow * innerSize, (firstRow + outerSize) * innerSize);
      firstRow += outerSize;
      if (
        parallel === undefined ||
        parallel.size < 2 ||
        rowCount * innerSize * outerSize < PARALLEL_MIN_MULTIPLY_ADDS
      ) {
        matmulRange(input, rows, kind, table, output, rowCount, innerSize, outerSize, 0, outerSize);
        continue;
      }
      const step = Math.ceil(outerSize / parallel.size / 4) * 4;
      const parts: unknown[][] = [];
      for (let start = 0; start < outerSize; start += step) {
        const end = Math.min(outerSize, start + step);
        parts.push([input, rows, kind, table, output, rowCount, innerSize, outerSize, start, end]);
      }
      parallel.run('matmulRange', parts);
    }
  },
};
