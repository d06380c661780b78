import type { ConformanceCase } from '../conformance-case.js';
import { referenceArgmax } from '../reference/sampling.js';

/** `argmax` cases: batches 1 and 7, odd vocabularies, and rows with ties (the lowest index wins). */
export const argmaxCases: ConformanceCase[] = [
  { rows: 1, ties: false },
  { rows: 7, ties: false },
  { rows: 7, ties: true },
].map(({ rows, ties }) => ({
  kernel: 'argmax',
  name: `rows=${rows} vocab=1..1001${ties ? ' with ties' : ''}`,
  storageDType: 'f32',
  async execute(context, random) {
    const vocabSize = random.integer(1, 1001);
    const logitValues = random.floats(rows * vocabSize, -10, 10);
    if (ties) {
      // a few equal maxima per row, at random positions
      for (let r = 0; r < rows; r++) {
        const copies = random.integer(2, 4);
        for (let c = 0; c < copies; c++) logitValues[r * vocabSize + random.integer(0, vocabSize - 1)] = 11;
      }
    }
    const output = context.output('i32', rows, 'output');
    context.backend.run('argmax', {
      logits: context.input('f32', logitValues, 'logits'),
      output,
      rowCount: rows,
      vocabSize,
    });
    const actual = await context.read(output);
    for (let r = 0; r < rows; r++) {
      const expected = referenceArgmax(logitValues, r * vocabSize, vocabSize);
      if (actual[r] !== expected) context.fail(`row ${r}: got token ${actual[r]}, expected ${expected}`);
    }
    context.expectPoisoned('output padding', actual, rows, actual.length);
  },
}));
