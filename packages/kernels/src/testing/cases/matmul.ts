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
  // decode batches as a GPU backend tiles them (CUDA: 64 or 128 outputs x up to 128 rows per block,
  // the inner dimension in slices of 64, split over blocks when outputs are few): partial tiles and
  // slices, one row, a slice that is not full, a full 128-row tile, and the first batch past it
  { rows: 1, inner: 1024, outer: 200 },
  { rows: 13, inner: 1032, outer: 136 },
  { rows: 58, inner: 4096, outer: 264 },
  { rows: 100, inner: 200, outer: 300 },
  { rows: 128, inner: 64, outer: 129 },
  { rows: 129, inner: 72, outer: 40 },
  { rows: [30, 40], inner: [1, 300], outer: [1, 70] },
  // the largest decode batches (CUDA on Hopper: tiles of 64 outputs from 65 rows, each block's slices
  // cycling through its stage buffers more than once, split over a cluster): a partial last tile
  { rows: 124, inner: 5128, outer: 200 },
  // decode rows as a GEMV kernel takes them (CUDA: 1-4 rows, the inner dimension in turns of 256 per
  // warp and split over a block's warps when outputs are few): 2-4 rows, an inner size that is a
  // multiple of 8 but not of 256, an odd number of outputs, a long inner dimension split over warps
  { rows: [2, 4], inner: 264, outer: 37 },
  { rows: 3, inner: 2056, outer: 129 },
  { rows: 4, inner: 4104, outer: 9 },
  // 5-8 rows with an inner size a multiple of 4 but not of 8 (CUDA: the GEMV kernel takes f32 weights
  // up to 8 rows, 4 floats per load): both ends of that range and one between, few outputs at 8 rows
  { rows: 5, inner: 1028, outer: 67 },
  { rows: [6, 7], inner: 1028, outer: 67 },
  { rows: 8, inner: 2052, outer: 5 },
  // 9-64 rows of f32 weights (CUDA: the tensor-core kernel's TF32 split, slices of 32 floats): an inner
  // size a multiple of 4 but not of 8, so the last slice is partial, and its largest f32 batch with few
  // outputs, the inner dimension split over a cluster
  { rows: [9, 33], inner: 1036, outer: 67 },
  { rows: 64, inner: 4100, outer: 130 },
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

/** Widths of a fused projection's outputs: q | k | v of a GQA shard, gate | up, and odd splits. */
const splits: { rows: SizeSpec; inner: SizeSpec; widths: SizeSpec[] }[] = [
  { rows: 1, inner: 256, widths: [64, 16, 16] },
  {
    rows: [2, 9],
    inner: [1, 200],
    widths: [
      [1, 40],
      [1, 40],
    ],
  },
  { rows: 58, inner: 512, widths: [256, 64, 64] },
  { rows: 124, inner: 1544, widths: [96, 40, 40] },
  // a GEMV kernel's decode rows: segments that do not start on a warp's pair of outputs
  { rows: [2, 4], inner: 520, widths: [41, 8, 9] },
  {
    rows: [100, 140],
    inner: [60, 130],
    widths: [
      [1, 150],
      [1, 150],
      [1, 150],
    ],
  },
];

/** `matmul` with `output2` / `output3`: one weight, its rows split over two or three outputs. */
export const matmulSplitCases: ConformanceCase[] = product({
  shape: splits,
  dtype: ['f32', 'bf16'] as const,
}).map(({ shape, dtype }) => ({
  kernel: 'matmul',
  name: `split rows=${formatSize(shape.rows)} inner=${formatSize(shape.inner)} outer=${shape.widths.map(formatSize).join('+')} ${dtype}`,
  storageDType: dtype,
  async execute(context, random, tolerance) {
    const rowCount = drawSize(random, shape.rows);
    const innerSize = drawSize(random, shape.inner);
    const widths = shape.widths.map((width) => drawSize(random, width));
    const total = widths.reduce((a, b) => a + b, 0);
    const inputValues = random.floats(rowCount * innerSize);
    const weightValues = random.floats(total * innerSize);
    const input = context.input('f32', inputValues, 'input');
    const weight = context.input(dtype, weightValues, 'weight');
    const outputs = widths.map((width, i) => context.output('f32', rowCount * width, `output${i + 1}`));
    context.backend.run('matmul', {
      input,
      weight,
      output: outputs[0]!,
      rowCount,
      innerSize,
      outerSize: widths[0]!,
      output2: outputs[1]!,
      outerSize2: widths[1]!,
      ...(outputs[2] ? { output3: outputs[2], outerSize3: widths[2]! } : {}),
    });
    // the reference of the whole projection, cut into the outputs' columns
    const whole = referenceMatmul(inputValues, roundedCopy(dtype, weightValues), rowCount, innerSize, total);
    let first = 0;
    for (const [i, width] of widths.entries()) {
      const expected = new Float64Array(rowCount * width);
      for (let r = 0; r < rowCount; r++)
        for (let c = 0; c < width; c++) expected[r * width + c] = whole[r * total + first + c]!;
      context.expectClose(`output${i + 1}`, await context.read(outputs[i]!), expected, tolerance);
      first += width;
    }
  },
}));
