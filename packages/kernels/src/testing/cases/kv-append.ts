import { kvBlockElementCount } from '../../kv-layout.js';
import { type ConformanceCase, product, roundedCopy } from '../conformance-case.js';
import { randomPagedLayout, tokenOffset } from '../paged-layout.js';

/**
 * `kv-append` cases: random sequences (capacities 1..40 tokens, blocks of 1, 5 and 16) receive
 * decode-style and prefill-style writes from batches of 1 and 7 rows; every slot not written must
 * stay poisoned, every written slot must hold the source rounded to the pool dtype.
 */
export const kvAppendCases: ConformanceCase[] = product({
  headDim: [8, 64, 128] as const,
  dtype: ['f32', 'f16', 'bf16'] as const,
  rows: [1, 7] as const,
}).map(({ headDim, dtype, rows }) => ({
  kernel: 'kv-append',
  name: `rows=${rows} kvHeads=1..3 headDim=${headDim} blockSize=1|5|16 ${dtype}`,
  storageDType: dtype,
  headDim,
  async execute(context, random, tolerance) {
    const rowCount = rows;
    const kvHeadCount = random.integer(1, 3);
    const blockSize = random.pick([1, 5, 16]);
    const capacities = Array.from({ length: random.integer(1, 6) }, () => random.integer(1, 40));
    const layout = randomPagedLayout(random, blockSize, capacities, random.integer(0, 3));
    // distinct (sequence, position) slots, each fed by a random (row, kv head)
    const slots = random.shuffle(
      capacities.flatMap((capacity, sequence) => Array.from({ length: capacity }, (_, p) => [sequence, p] as const)),
    );
    const entryCount = random.integer(1, Math.min(slots.length, 60));
    const entryValues = new Int32Array(entryCount * 4);
    for (let e = 0; e < entryCount; e++) {
      const [sequence, position] = slots[e]!;
      entryValues.set(
        [random.integer(0, rowCount - 1), random.integer(0, kvHeadCount - 1), position, layout.tableOffsets[sequence]!],
        e * 4,
      );
    }
    const keyValues = random.floats(rowCount * kvHeadCount * headDim);
    const valueValues = random.floats(rowCount * kvHeadCount * headDim);
    const poolSize = layout.blockCount * kvBlockElementCount(blockSize, headDim);
    const pool = context.output(dtype, poolSize, 'pool');
    const args = {
      pool,
      blockTable: context.input('i32', layout.blockTable, 'blockTable'),
      blockCount: layout.blockCount,
      blockSize,
      headDim,
      blockTableLength: layout.blockTable.length,
      key: context.input('f32', keyValues, 'key'),
      value: context.input('f32', valueValues, 'value'),
      entries: context.input('i32', entryValues, 'entries'),
      rowCount,
      kvHeadCount,
      entryCount,
    };
    context.backend.run('kv-append', args);
    const actual = await context.read(pool);
    const roundedKey = roundedCopy(dtype, keyValues);
    const roundedValue = roundedCopy(dtype, valueValues);
    const written = new Uint8Array(actual.length);
    const got: number[] = [];
    const want: number[] = [];
    for (let e = 0; e < entryCount; e++) {
      const [sourceRow, kvHead, position] = entryValues.subarray(e * 4, e * 4 + 3);
      const sequence = layout.tableOffsets.indexOf(entryValues[e * 4 + 3]!);
      const source = (sourceRow! * kvHeadCount + kvHead!) * headDim;
      for (const [isValue, rounded] of [
        [false, roundedKey],
        [true, roundedValue],
      ] as const) {
        const at = tokenOffset(layout, headDim, sequence, position!, isValue);
        for (let d = 0; d < headDim; d++) {
          got.push(actual[at + d]!);
          want.push(rounded[source + d]!);
          written[at + d] = 1;
        }
      }
    }
    context.expectMatch(`pool slots written by ${entryCount} entries`, got, want, tolerance);
    for (let i = 0; i < actual.length; i++) {
      if (written[i] === 0 && !Number.isNaN(actual[i]))
        context.fail(`pool element ${i} was not an entry's slot but was written (${actual[i]})`);
    }
  },
}));
