import type { ConformanceCase } from '../conformance-case.js';
import { referenceTopPSample } from '../reference/sampling.js';

/**
 * `top-p-sample` cases: batches 1 and 7 mixing greedy rows (temperature 0), temperatures 0.6..1.4
 * and top-p 0.3..1, fresh seeds. The sampled token must be the float64 reference's, or its neighbour
 * when the draw sits within 1e-5 of a cumulative boundary. A second case checks the draws follow the
 * nucleus distribution (the PRNG is not stuck).
 */
export const topPSampleCases: ConformanceCase[] = [
  ...[1, 7].map(
    (rows): ConformanceCase => ({
      kernel: 'top-p-sample',
      name: `rows=${rows} vocab=2..777 mixed greedy and nucleus rows`,
      storageDType: 'f32',
      async execute(context, random) {
        const vocabSize = random.integer(2, 777);
        const logitValues = random.floats(rows * vocabSize, -6, 6);
        const temperatureValues = Float32Array.from({ length: rows }, () => random.pick([0, random.uniform(0.6, 1.4)]));
        const topPValues = Float32Array.from({ length: rows }, () => random.pick([1, random.uniform(0.3, 1)]));
        const seedValues = Int32Array.from({ length: rows }, () => random.integer(-(2 ** 31), 2 ** 31 - 1));
        const output = context.output('i32', rows, 'output');
        context.backend.run('top-p-sample', {
          logits: context.input('f32', logitValues, 'logits'),
          temperatures: context.input('f32', temperatureValues, 'temperatures'),
          topPs: context.input('f32', topPValues, 'topPs'),
          seeds: context.input('i32', seedValues, 'seeds'),
          output,
          rowCount: rows,
          vocabSize,
        });
        const actual = await context.read(output);
        for (let r = 0; r < rows; r++) {
          const reference = referenceTopPSample(
            logitValues,
            r * vocabSize,
            vocabSize,
            temperatureValues[r]!,
            topPValues[r]!,
            seedValues[r]!,
          );
          if (!reference.acceptable.has(actual[r]!)) {
            context.fail(
              `row ${r} (temperature ${temperatureValues[r]}, topP ${topPValues[r]}): got token ${actual[r]}, expected ${reference.token}`,
            );
          }
        }
        context.expectPoisoned('output padding', actual, rows, actual.length);
      },
    }),
  ),
  {
    kernel: 'top-p-sample',
    name: 'rows=256 vocab=4 draws follow the nucleus distribution',
    storageDType: 'f32',
    async execute(context, random) {
      const rows = 256;
      const vocabSize = 4;
      // probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1; topP 0.7 keeps tokens 0 and 1 (0.625 : 0.375)
      const row = [0.5, 0.3, 0.15, 0.05].map(Math.log);
      const logitValues = Float32Array.from({ length: rows * vocabSize }, (_, i) => row[i % vocabSize]!);
      const output = context.output('i32', rows, 'output');
      context.backend.run('top-p-sample', {
        logits: context.input('f32', logitValues, 'logits'),
        temperatures: context.input('f32', new Float32Array(rows).fill(1), 'temperatures'),
        topPs: context.input('f32', new Float32Array(rows).fill(0.7), 'topPs'),
        seeds: context.input(
          'i32',
          Int32Array.from({ length: rows }, () => random.integer(-(2 ** 31), 2 ** 31 - 1)),
          'seeds',
        ),
        output,
        rowCount: rows,
        vocabSize,
      });
      const actual = (await context.read(output)).subarray(0, rows);
      const counts = [0, 0, 0, 0];
      for (const token of actual) counts[token] = (counts[token] ?? 0) + 1;
      if (counts[2] !== 0 || counts[3] !== 0) context.fail(`tokens outside the nucleus were drawn: counts ${counts}`);
      // expected 160 of 256 for token 0 (sd 7.7); 6 sd either side
      if (Math.abs(counts[0]! - 160) > 47) context.fail(`token 0 drawn ${counts[0]} of 256 times, expected about 160`);
    },
  },
];
