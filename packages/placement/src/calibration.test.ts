import { ValidationError } from '@fairkv/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { h100, tinyModel } from './__fixtures__/fixtures.js';
import { fitCostConstants, fitLayerOverhead, stepTerms } from './calibration.js';
import type { PlacementRequest } from './placement-request.js';
import { predictPlan, solvePlacement } from './solve-placement.js';
import { syntheticHeavyTailedProfile } from './synthetic-profile.js';

const model = tinyModel(4, 8);
const profileOf = (seed: number, scale = 1) => {
  const profile = syntheticHeavyTailedProfile({ layerCount: 4, kvHeadCount: 8, contextLength: 8192, seed });
  return { ...profile, mean: profile.mean.map((row) => row.map((tokens) => Math.max(1, Math.round(tokens * scale)))) };
};
const requestOf = (seed: number, batch: number, scale = 1): PlacementRequest => ({
  model,
  profile: profileOf(seed, scale),
  cluster: h100(4),
  batch,
  dtype: 'bf16',
});

/** The step the cost model predicts for the plan of `solver` under `request` with the given constants. */
function stepWith(request: PlacementRequest, solver: 'contiguous' | 'fair-copy', constants: object) {
  const { plan } = solvePlacement({ ...request, solver });
  return { plan, stepSeconds: predictPlan(plan, { ...request, options: constants }).stepTimeSeconds };
}

describe('stepTerms', () => {
  it('splits a prediction into bytes, interconnect and one overhead per layer plus the output stage', () => {
    const request = requestOf(1, 16);
    const { plan } = solvePlacement({ ...request, solver: 'fair-copy' });
    const terms = stepTerms(plan, { ...request, options: { bandwidthEfficiency: 0.3, layerOverheadSeconds: 1 } });
    expect(terms.overheadCount).toBe(model.layerCount + 1);
    expect(terms.bytesSeconds).toBeGreaterThan(0);
    expect(terms.interconnectSeconds).toBeGreaterThan(0);
    const predicted = predictPlan(plan, {
      ...request,
      options: { bandwidthEfficiency: 0.8, layerOverheadSeconds: 5e-5 },
    });
    expect(terms.bytesSeconds / 0.8 + terms.interconnectSeconds + 5 * 5e-5).toBeCloseTo(predicted.stepTimeSeconds, 12);
  });
});

describe('fitLayerOverhead', () => {
  it('recovers the overhead a step was made with, at the request efficiency', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 64 }),
        fc.double({ min: 0.3, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1e-3, noNaN: true }),
        (seed, batch, bandwidthEfficiency, layerOverheadSeconds) => {
          const request = requestOf(seed, batch);
          const measured = stepWith(request, 'contiguous', { bandwidthEfficiency, layerOverheadSeconds });
          const fitted = fitLayerOverhead({ ...measured, request: { ...request, options: { bandwidthEfficiency } } });
          expect(fitted.clamped).toBe(false);
          expect(fitted.bandwidthEfficiency).toBe(bandwidthEfficiency);
          expect(fitted.layerOverheadSeconds).toBeCloseTo(layerOverheadSeconds, 9);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('is 0 and clamped for a step shorter than the bytes alone, and refuses a step that is not positive', () => {
    const request = requestOf(3, 8);
    const { plan, stepSeconds } = stepWith(request, 'fair-copy', { layerOverheadSeconds: 0 });
    expect(fitLayerOverhead({ plan, request, stepSeconds: stepSeconds / 2 })).toEqual({
      bandwidthEfficiency: 1,
      layerOverheadSeconds: 0,
      clamped: true,
    });
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => fitLayerOverhead({ plan, request, stepSeconds: bad })).toThrow(
        new RegExp(`stepSeconds: expected a positive number of seconds, got ${bad}`),
      );
    }
  });
});

describe('fitCostConstants', () => {
  it('recovers both constants from one plan at two KV lengths, and from two plans', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 2, max: 64 }),
        fc.double({ min: 0.3, max: 1, noNaN: true }),
        fc.double({ min: 1e-6, max: 1e-3, noNaN: true }),
        (seed, batch, bandwidthEfficiency, layerOverheadSeconds) => {
          const constants = { bandwidthEfficiency, layerOverheadSeconds };
          const [full, half] = [requestOf(seed, batch), requestOf(seed, batch, 0.5)];
          const { plan } = solvePlacement({ ...full, solver: 'contiguous' });
          const at = (request: PlacementRequest) => ({
            plan,
            request,
            stepSeconds: predictPlan(plan, { ...request, options: constants }).stepTimeSeconds,
          });
          const fitted = fitCostConstants(at(full), at(half));
          expect(fitted.bandwidthEfficiency).toBeCloseTo(bandwidthEfficiency, 6);
          expect(fitted.layerOverheadSeconds).toBeCloseTo(layerOverheadSeconds, 9);
          // two plans of one request at different batches
          const bigger = requestOf(seed, batch * 2);
          const other = { ...stepWith(bigger, 'fair-copy', constants), request: bigger };
          const fromPlans = fitCostConstants(at(full), other);
          expect(fromPlans.bandwidthEfficiency).toBeCloseTo(bandwidthEfficiency, 6);
          expect(fromPlans.layerOverheadSeconds).toBeCloseTo(layerOverheadSeconds, 9);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('refuses two steps of the same bytes, and steps that fit no efficiency in (0, 1]', () => {
    const request = requestOf(5, 8);
    const measured = { ...stepWith(request, 'contiguous', {}), request };
    expect(() => fitCostConstants(measured, measured)).toThrow(/cannot tell the constants apart/);
    const half = requestOf(5, 8, 0.5);
    const halfStep = { ...stepWith(half, 'contiguous', {}), request: half };
    // the shorter KV taking longer: the fit needs a negative efficiency
    expect(() => fitCostConstants(measured, { ...halfStep, stepSeconds: measured.stepSeconds * 2 })).toThrow(
      ValidationError,
    );
  });
});
