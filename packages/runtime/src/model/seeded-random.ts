/**
 * A small deterministic random number generator for fixture models: mulberry32 (Tommy Ettinger's
 * 32-bit generator) for uniforms and Box-Muller for normals. Same seed, same model, on every
 * platform.
 *
 * @packageDocumentation
 */

/** Deterministic uniform and normal samples from a 32-bit seed. */
export class SeededRandom {
  private state: number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniform sample in [0, 1). */
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
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
