import { type ConformanceCase, drawSize, formatSize, product, roundedCopy } from '../conformance-case.js';
import { referenceEmbeddingGather } from '../reference/dense.js';

type CaseArguments = Parameters<ConformanceCase['execute']>;

/** Runs the kernel on `table` (`[vocabSize][hiddenSize]` stored as `dtype`) and `tokenIds`, against the reference. */
async function gatherAndCompare(
  context: CaseArguments[0],
  tolerance: CaseArguments[2],
  dtype: 'f32' | 'f16' | 'bf16',
  tableValues: Float32Array,
  tokenIds: Int32Array,
  hiddenSize: number,
): Promise<void> {
  const rowCount = tokenIds.length;
  const vocabSize = tableValues.length / hiddenSize;
  const table = context.input(dtype, tableValues, 'table');
  const tokens = context.input('i32', tokenIds, 'tokens');
  const output = context.output('f32', rowCount * hiddenSize, 'output');
  context.backend.run('embedding-gather', { table, tokens, output, rowCount, vocabSize, hiddenSize });
  const expected = referenceEmbeddingGather(roundedCopy(dtype, tableValues), tokenIds, hiddenSize);
  context.expectClose('output', await context.read(output), expected, tolerance);
}

/** Batches 1 and 7 plus a random batch, odd sizes, every stored dtype. */
const sizedCases: ConformanceCase[] = product({
  rows: [1, 7, [2, 33]] as const,
  dtype: ['f32', 'f16', 'bf16'] as const,
}).map(({ rows, dtype }) => ({
  kernel: 'embedding-gather',
  name: `rows=${formatSize(rows)} vocab=1..97 hidden=1..131 ${dtype}`,
  storageDType: dtype,
  async execute(context, random, tolerance) {
    const rowCount = drawSize(random, rows);
    const vocabSize = random.integer(1, 97);
    const hiddenSize = random.integer(1, 131);
    const tableValues = random.floats(vocabSize * hiddenSize);
    const tokenIds = Int32Array.from({ length: rowCount }, () => random.integer(0, vocabSize - 1));
    await gatherAndCompare(context, tolerance, dtype, tableValues, tokenIds, hiddenSize);
  },
}));

/**
 * More rows than a CUDA grid dimension holds (65,535): a 64K-token prompt's embedding, or the runtime's
 * gather of a copied head's prefill rows (every row its own index, some the zero row past the end).
 */
const manyRowCases: ConformanceCase[] = (['f32', 'bf16'] as const).map((dtype) => ({
  kernel: 'embedding-gather',
  name: `rows=70001 vocab=70002 hidden=3 ${dtype} (more rows than a grid dimension)`,
  storageDType: dtype,
  async execute(context, random, tolerance) {
    const rowCount = 70_001;
    const vocabSize = rowCount + 1;
    const hiddenSize = 3;
    const tableValues = random.floats(vocabSize * hiddenSize);
    const tokenIds = Int32Array.from({ length: rowCount }, (_, r) => (r % 7 === 6 ? vocabSize - 1 : r));
    await gatherAndCompare(context, tolerance, dtype, tableValues, tokenIds, hiddenSize);
  },
}));

/** `embedding-gather` cases. */
export const embeddingGatherCases: ConformanceCase[] = [...sizedCases, ...manyRowCases];
