import { seedToUniform } from '../../pcg-hash.js';
import type { CpuKernel } from '../cpu-kernel.js';
import { argmaxOf } from './argmax.js';

/**
 * Nucleus sampling of one row, exactly as the `top-p-sample` contract spells it (softmax in f64,
 * descending order with ties by lower index, shortest prefix reaching `topP`, PCG-hash uniform).
 * Sorts only the tokens that can be in the nucleus, so large vocabularies cost little more than a
 * softmax.
 */
export function sampleTopP(
  logits: Float32Array,
  offset: number,
  vocabSize: number,
  temperature: number,
  topP: number,
  seed: number,
  probabilities: Float64Array,
  order: Int32Array,
): number {
  if (!(temperature > 0)) return argmaxOf(logits, offset, vocabSize);
  let maximum = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < vocabSize; v++) maximum = Math.max(maximum, logits[offset + v]!);
  let total = 0;
  for (let v = 0; v < vocabSize; v++) {
    const weight = Math.exp((logits[offset + v]! - maximum) / temperature);
    probabilities[v] = weight;
    total += weight;
  }
  for (let v = 0; v < vocabSize; v++) probabilities[v] = probabilities[v]! / total;
  // Only tokens at or above a threshold can be in the nucleus once their mass reaches topP (they come
  // first in the sorted order), so sort just those: the threshold drops 16x until that holds (0: all).
  let threshold = 1 / vocabSize;
  let candidateCount = 0;
  for (;;) {
    let candidateMass = 0;
    candidateCount = 0;
    for (let v = 0; v < vocabSize; v++) {
      if (probabilities[v]! >= threshold) {
        order[candidateCount++] = v;
        candidateMass += probabilities[v]!;
      }
    }
    if (threshold === 0 || candidateMass >= topP + 1e-9) break;
    threshold = threshold < 1e-30 ? 0 : threshold / 16;
  }
  const sorted = order.subarray(0, candidateCount);
  sorted.sort((a, b) => probabilities[b]! - probabilities[a]! || a - b);
  let nucleusSize = candidateCount;
  let mass = 0;
  for (let i = 0; i < candidateCount; i++) {
    mass += probabilities[sorted[i]!]!;
    if (mass >= topP) {
      nucleusSize = i + 1;
      break;
    }
  }
  const target = seedToUniform(seed) * mass;
  let cumulative = 0;
  for (let i = 0; i < nucleusSize; i++) {
    cumulative += probabilities[sorted[i]!]!;
    if (cumulative > target) return sorted[i]!;
  }
  return sorted[nucleusSize - 1]!;
}

/** `top-p-sample` on the CPU. */
export const topPSampleKernel: CpuKernel<'top-p-sample'> = {
  name: 'top-p-sample',
  run(args, context) {
    const { rowCount, vocabSize } = args;
    const logits = context.f32(args.logits);
    const temperatures = context.f32(args.temperatures);
    const topPs = context.f32(args.topPs);
    const seeds = context.i32(args.seeds);
    const output = context.i32(args.output);
    const probabilities = context.scratchF64(0, vocabSize);
    const order = new Int32Array(vocabSize);
    for (let row = 0; row < rowCount; row++) {
      output[row] = sampleTopP(
        logits,
        row * vocabSize,
        vocabSize,
        temperatures[row]!,
        topPs[row]!,
        seeds[row]!,
        probabilities,
        order,
      );
    }
  },
};
