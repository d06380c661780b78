/**
 * A small deterministic random number generator for fixture models: `@fairkv/core`'s `seededRandom`
 * (mulberry32) for uniforms and Box-Muller for normals. Same seed, same model, on every
 * platform.
 *
 * @packageDocumentation
 */

import { seededRandom } from '@fairkv/core';

/** Deterministic uniform and normal samples from a 32-bit seed. */
export class SeededRandom {
  private readonly next: () => number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.next = seededRandom(seed);
  }

  /** A uniform sample in [0, 1). */
  uniform(): number {
    return this.next();
  }

  /** A standard normal sample. */
  normal(): number {
    if (this.spare !== undefined) {
      const value = this.spare;
      this.spare = undefined;
      return value;
    }
    const radius = Math.sqrt(-2 * Math.log(1 - this.uniform()));
    const angle = 2 * Math.PI * this.uniform();
    this.spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  /** `count` normal samples scaled by `standardDeviation` and shifted by `mean`. */
  normals(count: number, standardDeviation: number, mean = 0): Float32Array {
    const output = new Float32Array(count);
    for (let index = 0; index < count; index++) output[index] = mean + standardDeviation * this.normal();
    return output;
  }
}
