import { describe, expect, it } from 'vitest';
import { createRandom } from '../../testing/random.js';
import { referenceTopPSample } from '../../testing/reference/sampling.js';
import { sampleTopP } from './top-p-sample.js';

describe('sampleTopP on large vocabularies', () => {
  it('matches the float64 reference with flat, peaked and spread logits (only candidates are sorted)', () => {
    const random = createRandom(99);
    const vocabSize = 32000;
    const probabilities = new Float64Array(vocabSize);
    const order = new Int32Array(vocabSize);
    const shapes = [
      () => new Float32Array(vocabSize), // flat: every token is a candidate
      () => random.floats(vocabSize, -1, 1),
      () => random.floats(vocabSize, -20, 20), // peaked
    ];
    for (const makeLogits of shapes) {
      const logits = makeLogits();
      for (const [temperature, topP] of [
        [1, 0.9],
        [0.7, 0.5],
        [1.3, 1],
        [1, 0.05],
      ] as const) {
        const seed = random.integer(0, 2 ** 31 - 1);
        const token = sampleTopP(logits, 0, vocabSize, temperature, Math.fround(topP), seed, probabilities, order);
        const reference = referenceTopPSample(logits, 0, vocabSize, temperature, Math.fround(topP), seed);
        expect(
          reference.acceptable.has(token),
          `temperature ${temperature} topP ${topP}: ${token} vs ${reference.token}`,
        ).toBe(true);
      }
    }
  });
});
