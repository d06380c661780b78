/**
 * Float64 reference of `top-p-sample`: the nucleus and the cumulative interval of each of its
 * tokens, so a check can accept either neighbour when the target sits within rounding of a boundary.
 *
 * @packageDocumentation
 */
import { seedToUniform } from '../../pcg-hash.js';

/** The reference draw of one row. */
export interface ReferenceSample {
  /** The token the contract's procedure picks in float64. */
  token: number;
  /** Tokens whose cumulative interval lies within `slack` of the target (acceptable answers). */
  acceptable: Set<number>;
}

/** Reference argmax (lowest index among ties). */
export function referenceArgmax(logits: ArrayLike<number>, offset: number, vocabSize: number): number {
  let best = 0;
  for (let v = 1; v < vocabSize; v++) if (logits[offset + v]! > logits[offset + best]!) best = v;
  return best;
}

/** Reference nucleus sample of one row, following the `top-p-sample` contract step by step. */
export function referenceTopPSample(
  logits: ArrayLike<number>,
  offset: number,
  vocabSize: number,
  temperature: number,
  topP: number,
  seed: number,
  slack = 1e-5,
): ReferenceSample {
  if (!(temperature > 0)) {
    const token = referenceArgmax(logits, offset, vocabSize);
    return { token, acceptable: new Set([token]) };
  }
  let maximum = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < vocabSize; v++) maximum = Math.max(maximum, logits[offset + v]!);
  const weights = Array.from({ length: vocabSize }, (_, v) => Math.exp((logits[offset + v]! - maximum) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  const probabilities = weights.map((w) => w / total);
  const order = probabilities.map((_, v) => v).sort((a, b) => probabilities[b]! - probabilities[a]! || a - b);
  let nucleus = vocabSize;
  let mass = 0;
  for (let i = 0; i < vocabSize; i++) {
    mass += probabilities[order[i]!]!;
    if (mass >= topP) {
      nucleus = i + 1;
      break;
    }
  }
  const target = seedToUniform(seed) * mass;
  let token = order[nucleus - 1]!;
  const acceptable = new Set<number>();
  let cumulative = 0;
  let chosen = false;
  for (let i = 0; i < nucleus; i++) {
    const before = cumulative;
    cumulative += probabilities[order[i]!]!;
    if (!chosen && cumulative > target) {
      token = order[i]!;
      chosen = true;
    }
    // a backend with different rounding may pick any token whose interval touches target +- slack,
    // or a neighbour across a nucleus boundary that moves by rounding
    if (cumulative > target - slack && before <= target + slack) acceptable.add(order[i]!);
  }
  acceptable.add(token);
  if (Math.abs(mass - topP) < slack && nucleus < vocabSize) acceptable.add(order[nucleus]!);
  return { token, acceptable };
}
