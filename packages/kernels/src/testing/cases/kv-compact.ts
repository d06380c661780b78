import { kvBlockElementCount } from '../../kv-layout.js';
import { type ConformanceCase, product } from '../conformance-case.js';
import { randomPagedLayout, tokenOffset } from '../paged-layout.js';

/**
 * `kv-compact` cases: 1..5 sequences of lengths 0..40 keep 0, 1 or a random unsorted subset of
 * their tokens into fresh blocks; kept tokens must be copied bit-exact, source blocks left intact,
 * and the tail of each destination's last block left poisoned.
 */
export const kvCompactCases: ConformanceCase[] = product({
  headDim: [8, 64, 128] as const,
  dtype: ['f32', 'f16', 'bf16'] as const,
}).map(({ headDim, dtype }) => ({
  kernel: 'kv-compact',
  name: `sequences=1..5 lengths=0..40 headDim=${headDim} blockSize=1|5|16 ${dtype}`,
  storageDType: dtype,
  headDim,
  async execute(context, random) {
    const blockSize = random.pick([1, 5, 16]);
    const sequenceCount = random.integer(1, 5);
    const lengths = Array.from({ length: sequenceCount }, () => random.pick([0, 1, random.integer(2, 40)]));
    const kept = lengths.map((length) => {
      const count = length === 0 ? 0 : random.pick([0, 1, random.integer(1, length)]);
      return random.shuffle(Array.from({ length }, (_, i) => i)).slice(0, count);
    });
    // sequences 0..n-1 are the sources, n..2n-1 their destinations
    const layout = randomPagedLayout(
      random,
      blockSize,
      [...lengths, ...kept.map((k) => k.length)],
      random.integer(0, 2),
    );
    const poolSize = layout.blockCount * kvBlockElementCount(blockSize, headDim);
    const initial = random.floats(poolSize);
    for (let s = 0; s < sequenceCount; s++) {
      for (const block of layout.blocks[sequenceCount + s]!) {
        initial.fill(
          Number.NaN,
          block * kvBlockElementCount(blockSize, headDim),
          (block + 1) * kvBlockElementCount(blockSize, headDim),
        );
      }
    }
    const pool = context.input(dtype, initial, 'pool');
    const before = await context.read(pool);
    const keptFlat = kept.flat();
    const sequenceValues = new Int32Array(sequenceCount * 4);
    let keptOffset = 0;
    for (let s = 0; s < sequenceCount; s++) {
      sequenceValues.set(
        [keptOffset, kept[s]!.length, layout.tableOffsets[s]!, layout.tableOffsets[sequenceCount + s]!],
        s * 4,
      );
      keptOffset += kept[s]!.length;
    }
    context.backend.run('kv-compact', {
      pool,
      blockTable: context.input('i32', layout.blockTable, 'blockTable'),
      blockCount: layout.blockCount,
      blockSize,
      headDim,
      blockTableLength: layout.blockTable.length,
      // a zero-sized buffer is not allowed, so an empty list still passes one element
      keptIndices: context.input('i32', Int32Array.from(keptFlat.length > 0 ? keptFlat : [0]), 'keptIndices'),
      sequences: context.input('i32', sequenceValues, 'sequences'),
      sequenceCount,
      keptIndexCount: keptFlat.length,
    });
    const expected = Float64Array.from(before);
    for (let s = 0; s < sequenceCount; s++) {
      kept[s]!.forEach((index, j) => {
        for (const isValue of [false, true]) {
          const from = tokenOffset(layout, headDim, s, index, isValue);
          const to = tokenOffset(layout, headDim, sequenceCount + s, j, isValue);
          expected.set(before.subarray(from, from + headDim), to);
        }
      });
    }
    const actual = await context.read(pool);
    for (let i = 0; i < poolSize; i++) {
      const same = Number.isNaN(expected[i]!) ? Number.isNaN(actual[i]!) : actual[i] === expected[i];
      if (!same)
        context.fail(
          `pool element ${i}: got ${actual[i]}, expected ${expected[i]} (kept tokens are copied bit-exact; nothing else changes)`,
        );
    }
  },
}));
