import {
  type ConformanceCase,
  drawSize,
  formatSize,
  product,
  roundedCopy,
  type SizeSpec,
} from '../conformance-case.js';
import { referenceMatmul } from '../reference/dense.js';

const shapes: { rows: SizeSpec; inner: SizeSpec; outer: SizeSpec }[] = [
  { rows: 1, inner: [1, 300], outer: [1, 70] },
  { rows: 7, inner: [1, 300], outer: [1, 70] },
  { rows: [2, 21], inner: [1, 9], outer: [1, 9] },
  { rows: [5, 9], inner: [900, 1100], outer: [60, 140] },
  // decode batches as a GPU backend tiles them (CUDA: 128 outputs x up to 128 rows per block, the inner
  // dimension in slices of 64, split over blocks when outputs are few): partial tiles and slices, one
  // row, a slice that is not full, a full 128-row tile, and the first batch past it
  { rows: 1, inner: 1024, outer: 200 },
  { rows: 13, inner: 1032, outer: 136 },
  { rows: 58, inner: 4096, outer: 264 },
  { rows: 100, inner: 200, outer: 300 },
  { rows: 128, inner: 64, outer: 129 },
  { rows: 129, inner: 72, outer: 40 },
  { rows: [30, 40], inner: [1, 300], outer: [1, 70] },
];

/**
 * `matmul` cases: batches 1 and 7 and random, odd and tiny sizes, tiles of large inner sizes, decode
 * batches around a GPU kernel's tile edges, every dtype.
 */
export const matmulCases: ConformanceCase[] = product({
  shape: shapes,
  dtype: ['f32', 'f16', 'bf16'] as const,
}).map(({ shape, dtype }) => ({
  kernel: 'matmul',
  name: `rows=${formatSize(shape.rows)} inner=${formatSize(shape.inner)} outer=${formatSize(shape.outer)} ${dtype}`,
  storageDType: dtype,
  async execute(context, random, tolerance) {
    const rowCount = drawSize(random, shape.rows);
    const innerSize = drawSize(random, shape.inner);
    const outerSize = drawSize(random, shape.outer);
    const inputValues = random.floats(rowCount * innerSize);
    const weightValues = random.floats(outerSize * innerSize);
    const input = context.input('f32', inputValues, 'input');
    const weight = context.input(dtype, weightValues, 'weight');
    const output = context.output('f32', rowCount * outerSize, 'output');
    context.backend.run('matmul', { input, weight, output, rowCount, innerSize, outerSize });
    const expected = referenceMatmul(inputValues, roundedCopy(dtype, weightValues), rowCount, innerSize, outerSize);
    context.expectClose('output', await context.read(output), expected, tolerance);
  },
}));
