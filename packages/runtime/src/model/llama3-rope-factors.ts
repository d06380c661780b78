/**
 * Llama 3.1 RoPE scaling in GGUF files. llama.cpp's `convert_hf_to_gguf.py` does not store the
 * `rope_scaling` parameters of Llama 3.1/3.2; it stores their effect, one divisor per rotary pair, as
 * the tensor `rope_freqs.weight`. This module recomputes those divisors from candidate parameters
 * (transformers' `_compute_llama3_parameters`) and recovers the parameters whose divisors match.
 *
 * @packageDocumentation
 */
import type { RopeScaling } from '@fairkv/core';
import { shortestFloat32Decimal } from './gguf-metadata.js';

/** The llama3 scaling parameters Meta's released models use, tried in order. */
export const LLAMA3_SCALING_CANDIDATES: readonly {
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}[] = [{ lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 }];

/** Per-pair frequency divisors of llama3 scaling (what `rope_freqs.weight` holds). */
export function llama3RopeFactors(
  scaling: Extract<RopeScaling, { type: 'llama3' }>,
  ropeTheta: number,
  headDim: number,
): Float64Array {
  const factors = new Float64Array(headDim / 2);
  const lowFreqWavelength = scaling.originalMaxPositionEmbeddings / scaling.lowFreqFactor;
  const highFreqWavelength = scaling.originalMaxPositionEmbeddings / scaling.highFreqFactor;
  for (let pair = 0; pair < headDim / 2; pair++) {
    const frequency = 1 / ropeTheta ** ((2 * pair) / headDim);
    const wavelength = (2 * Math.PI) / frequency;
    if (wavelength < highFreqWavelength) factors[pair] = 1;
    else if (wavelength > lowFreqWavelength) factors[pair] = scaling.factor;
    else {
      const smooth =
        (scaling.originalMaxPositionEmbeddings / wavelength - scaling.lowFreqFactor) /
        (scaling.highFreqFactor - scaling.lowFreqFactor);
      factors[pair] = 1 / ((1 - smooth) / scaling.factor + smooth);
    }
  }
  return factors;
}

/**
 * The llama3 scaling whose divisors match `stored` (relative tolerance 1e-5, float32 storage), or
 * undefined when none of the candidates does.
 */
export function recoverLlama3Scaling(
  stored: Float32Array,
  ropeTheta: number,
  headDim: number,
): RopeScaling | undefined {
  if (stored.length !== headDim / 2) return undefined;
  const factor = Math.max(...stored);
  if (!(factor > 1) || !Number.isFinite(factor)) return undefined;
  const rounded = shortestFloat32Decimal(factor);
  for (const candidate of LLAMA3_SCALING_CANDIDATES) {
    const scaling = { type: 'llama3' as const, factor: rounded, ...candidate };
    const expected = llama3RopeFactors(scaling, ropeTheta, headDim);
    if (expected.every((value, index) => Math.abs(value - stored[index]!) <= 1e-5 * value)) return scaling;
  }
  return undefined;
}
