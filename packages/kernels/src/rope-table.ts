import type { RopeScaling } from '@fairkv/core';
import { ValidationError } from '@fairkv/core';

/** Options of {@link ropeInverseFrequencies} and {@link buildRopeTable}. */
export interface RopeTableOptions {
  /** Head dimension (even). */
  headDim: number;
  /** RoPE base (`rope_theta`, 10000 in LLaMA 2, 500000 in LLaMA 3). */
  base: number;
  /** Frequency scaling, or null. */
  scaling: RopeScaling | null;
}

/**
 * RoPE inverse frequencies `base^(-2i / headDim)` for `i < headDim / 2` (RoFormer, Su et al. 2021),
 * with the `llama3` scaling of Llama 3.1 (transformers' `_compute_llama3_parameters`) or `linear`
 * position interpolation (Chen et al. 2023) applied. Computed in float64.
 */
export function ropeInverseFrequencies(options: RopeTableOptions): Float64Array {
  const { headDim, base, scaling } = options;
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) {
    throw new ValidationError(`headDim: expected a positive even integer, got ${headDim}`, [
      { path: '$.headDim', message: 'expected a positive even integer' },
    ]);
  }
  if (!(base > 0)) {
    throw new ValidationError(`base: expected a positive number, got ${base}`, [
      { path: '$.base', message: 'expected a positive number' },
    ]);
  }
  const half = headDim / 2;
  const inverse = new Float64Array(half);
  for (let i = 0; i < half; i++) inverse[i] = base ** ((-2 * i) / headDim);
  if (scaling?.type === 'linear') {
    for (let i = 0; i < half; i++) inverse[i] = inverse[i]! / scaling.factor;
  } else if (scaling?.type === 'llama3') {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings } = scaling;
    const lowFreqWavelength = originalMaxPositionEmbeddings / lowFreqFactor;
    const highFreqWavelength = originalMaxPositionEmbeddings / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const frequency = inverse[i]!;
      const wavelength = (2 * Math.PI) / frequency;
      if (wavelength > lowFreqWavelength) {
        inverse[i] = frequency / factor;
      } else if (wavelength >= highFreqWavelength) {
        const smooth = (originalMaxPositionEmbeddings / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inverse[i] = ((1 - smooth) * frequency) / factor + smooth * frequency;
      }
    }
  }
  return inverse;
}

/**
 * The cos/sin table the `rope` kernel reads: f32 `[positionCount][2][headDim / 2]`, `table[p][0][i] =
 * cos(p * inv[i])` and `table[p][1][i] = sin(p * inv[i])`, computed in float64 then rounded, so every
 * backend rotates with identical coefficients even at large positions.
 */
export function buildRopeTable(options: RopeTableOptions & { positionCount: number }): Float32Array {
  const { positionCount, headDim } = options;
  if (!Number.isInteger(positionCount) || positionCount <= 0) {
    throw new ValidationError(`positionCount: expected a positive integer, got ${positionCount}`, [
      { path: '$.positionCount', message: 'expected a positive integer' },
    ]);
  }
  const inverse = ropeInverseFrequencies(options);
  const half = headDim / 2;
  const table = new Float32Array(positionCount * headDim);
  for (let position = 0; position < positionCount; position++) {
    const row = position * headDim;
    for (let i = 0; i < half; i++) {
      const angle = position * inverse[i]!;
      table[row + i] = Math.cos(angle);
      table[row + half + i] = Math.sin(angle);
    }
  }
  return table;
}
