/**
 * The deterministic PRNG of `top-p-sample`: the PCG hash of Jarzynski & Olano, "Hash Functions for
 * GPU Rendering" (JCGT 2020), a 32-bit integer-only permutation every backend (JavaScript, CUDA,
 * WGSL) computes bit-identically.
 *
 * @packageDocumentation
 */

/** PCG hash of a 32-bit value (`pcg_hash` in Jarzynski & Olano 2020); returns an unsigned 32-bit integer. */
export function pcgHash(input: number): number {
  const state = (Math.imul(input >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The uniform number in `[0, 1)` that `top-p-sample` draws from a seed: `(pcgHash(seed) >>> 8) / 2^24`. */
export function seedToUniform(seed: number): number {
  return (pcgHash(seed) >>> 8) / 16777216;
}

/**
 * Per-step seed for a request: `pcgHash(requestSeed XOR pcgHash(step))`, returned as a signed 32-bit
 * integer ready for an `Int32Array` seeds buffer. One request seed reproduces a whole generation.
 */
export function samplingSeed(requestSeed: number, step: number): number {
  return pcgHash((requestSeed ^ pcgHash(step)) >>> 0) | 0;
}
