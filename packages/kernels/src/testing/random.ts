/**
 * Seeded random numbers for the conformance suite: every run draws a fresh seed (or takes
 * `FAIRKV_CONFORMANCE_SEED` to reproduce a failure), and every failure message names it.
 *
 * @packageDocumentation
 */
import { randomInt } from 'node:crypto';

/** A seeded source of random shapes and inputs (SplitMix32-style generator). */
export interface Random {
  /** The seed this generator started from. */
  readonly seed: number;
  /** Uniform in `[0, 1)`. */
  next(): number;
  /** Uniform integer in `[min, max]`. */
  integer(min: number, max: number): number;
  /** Uniform in `[min, max)`. */
  uniform(min: number, max: number): number;
  /** `length` values uniform in `[min, max)`. */
  floats(length: number, min?: number, max?: number): Float32Array;
  /** Fisher-Yates shuffle of `values` in place. */
  shuffle<T>(values: T[]): T[];
  /** One element of `values`. */
  pick<T>(values: readonly T[]): T;
}

/** Creates a generator from a 32-bit seed. */
export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 4294967296;
  };
  const random: Random = {
    seed: seed >>> 0,
    next,
    integer: (min, max) => min + Math.floor(next() * (max - min + 1)),
    uniform: (min, max) => min + next() * (max - min),
    floats(length, min = -1, max = 1) {
      const values = new Float32Array(length);
      for (let i = 0; i < length; i++) values[i] = min + next() * (max - min);
      return values;
    },
    shuffle(values) {
      for (let i = values.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [values[i], values[j]] = [values[j]!, values[i]!];
      }
      return values;
    },
    pick: (values) => values[Math.floor(next() * values.length)]!,
  };
  return random;
}

/**
 * A fresh seed for one run: `FAIRKV_CONFORMANCE_SEED` when set (to reproduce a reported failure),
 * otherwise cryptographically random.
 */
export function freshSeed(): number {
  const fixed = process.env.FAIRKV_CONFORMANCE_SEED;
  if (fixed !== undefined && fixed !== '') return Number(fixed) >>> 0;
  return randomInt(2 ** 31);
}
