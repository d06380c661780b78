import { type ConformanceCase, drawSize, formatSize, product, roundedCopy } from '../conformance-case.js';
import { referenceRmsNorm } from '../reference/dense.js';

/**
 * `rms-norm` cases: batches 1 and 7, odd sizes up to 1031 and a Llama hidden size (4096, which GPU
 * backends may hold in registers), every stored dtype for the weight.
 */
export const rmsNormCases: ConformanceCase[] = product({
  rows: [1, 7] as const,
  size: [[1, 9], [10, 1031], 4096] as const,
  dtype: ['f32', 'f16', 'bf16'] as const,
}).map(({ rows, size, dtype }) => ({
  kernel: 'rms-norm',
  name: `rows=${formatSize(rows)} size=${formatSize(size)} ${dtype}`,
  storageDType: dtype,
  async execute(context, random, tolerance) {
    const rowCount = drawSize(random, rows);
    const width = drawSize(random, size);
    const epsilon = random.pick([1e-5, 1e-6]);
    // small inputs make epsilon matter, large ones the sum of squares
    const magnitude = random.pick([1e-3, 1, 3]);
    const inputValues = random.floats(rowCount * width, -magnitude, magnitude);
    const weightValues = random.floats(width, 0.5, 1.5);
    const input = context.input('f32', inputValues, 'input');
    const weight = context.input(dtype, weightValues, 'weight');
    const output = context.output('f32', rowCount * width, 'output');
    context.backend.run('rms-norm', { input, weight, output, rowCount, size: width, epsilon });
    const expected = referenceRmsNorm(inputValues, roundedCopy(dtype, weightValues), rowCount, width, epsilon);
    context.expectClose('output', await context.read(output), expected, tolerance);
  },
}));

/** `rms-norm` with `addend`: the residual add written back into `input`, and the norm of the sum. */
export const rmsNormAddCases: ConformanceCase[] = product({
  rows: [1, [2, 60]] as const,
  size: [
    [1, 9],
    [10, 4100],
  ] as const,
  dtype: ['f32', 'bf16'] as const,
}).map(({ rows, size, dtype }) => ({
  kernel: 'rms-norm',
  name: `with addend rows=${formatSize(rows)} size=${formatSize(size)} ${dtype}`,
  storageDType: dtype,
  async execute(context, random, tolerance) {
    const rowCount = drawSize(random, rows);
    const width = drawSize(random, size);
    const epsilon = 1e-5;
    const inputValues = random.floats(rowCount * width, -2, 2);
    const addendValues = random.floats(rowCount * width, -2, 2);
    const weightValues = random.floats(width, 0.5, 1.5);
    const input = context.input('f32', inputValues, 'input');
    const addend = context.input('f32', addendValues, 'addend');
    const weight = context.input(dtype, weightValues, 'weight');
    const output = context.output('f32', rowCount * width, 'output');
    context.backend.run('rms-norm', { input, addend, weight, output, rowCount, size: width, epsilon });
    // the sum as f32, as add-in-place leaves it
    const sum = Float32Array.from(inputValues, (value, i) => value + addendValues[i]!);
    context.expectClose('input', await context.read(input), Float64Array.from(sum), tolerance);
    const expected = referenceRmsNorm(sum, roundedCopy(dtype, weightValues), rowCount, width, epsilon);
    context.expectClose('output', await context.read(output), expected, tolerance);
  },
}));
