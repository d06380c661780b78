/**
 * The cost model calibrated on measured decode steps, as the FairKV paper calibrates its per-head
 * latency model on the target hardware. A plan's predicted step is affine in the model's two hardware
 * constants: `step = bytesSeconds / bandwidthEfficiency + interconnectSeconds + overheadCount x
 * layerOverheadSeconds` (docs/cost-model.md). One measured step fixes the overhead at a given
 * efficiency; two steps of different weight (one plan at two KV lengths, or two plans) fix both.
 *
 * @packageDocumentation
 */
import type { Plan } from '@fairkv/core';
import { ValidationError } from '@fairkv/core';
import type { PlacementRequest } from './placement-request.js';
import { predictPlan } from './solve-placement.js';

/** A plan's predicted step as an affine function of the cost model's two hardware constants. */
export interface StepTerms {
  /** Seconds of memory reads at the devices' nominal bandwidth (divided by `bandwidthEfficiency` in the step). */
  bytesSeconds: number;
  /** Seconds of the all-reduces and the logits gather (the interconnect's, independent of both constants). */
  interconnectSeconds: number;
  /** How many `layerOverheadSeconds` the step holds: one per layer and one for the output stage. */
  overheadCount: number;
}

/** The constants {@link fitCostConstants} and {@link fitLayerOverhead} give. */
export interface CostConstants {
  bandwidthEfficiency: number;
  layerOverheadSeconds: number;
}

/**
 * The terms of `plan`'s predicted step for `request` (its `options`' two hardware constants ignored;
 * every other option applies), from three predictions.
 */
export function stepTerms(plan: Plan, request: PlacementRequest): StepTerms {
  const predict = (constants: CostConstants) =>
    predictPlan(plan, { ...request, options: { ...request.options, ...constants } }).stepTimeSeconds;
  const nominal = predict({ bandwidthEfficiency: 1, layerOverheadSeconds: 0 });
  const bytesSeconds = predict({ bandwidthEfficiency: 0.5, layerOverheadSeconds: 0 }) - nominal;
  const overheadCount = (predict({ bandwidthEfficiency: 1, layerOverheadSeconds: 1e-3 }) - nominal) / 1e-3;
  return { bytesSeconds, interconnectSeconds: nominal - bytesSeconds, overheadCount: Math.round(overheadCount) };
}

/** A measured decode step of a plan under a request (its batch: the batch measured). */
export interface MeasuredStep {
  plan: Plan;
  request: PlacementRequest;
  /** Seconds per decode step, e.g. batch / measured decode tokens per second. */
  stepSeconds: number;
}

/** Relative rounding of the fitted terms: an efficiency a hair above 1, an overhead a hair below 0, is exact. */
const ROUNDING_SLACK = 1e-9;

function checkStep(step: number, field: string): void {
  if (!(Number.isFinite(step) && step > 0)) {
    throw new ValidationError(`${field}: expected a positive number of seconds, got ${step}`, [
      { path: `$.${field}`, message: 'expected a positive number of seconds' },
    ]);
  }
}

/**
 * The per-layer overhead that makes the cost model predict `measured`'s step exactly, at the request's
 * `bandwidthEfficiency` (default 1). `clamped` when the step is shorter than the bytes and the
 * interconnect alone take at that efficiency: the overhead is then 0 (the devices read faster than the
 * efficiency says).
 * @throws ValidationError for a step that is not a positive number.
 */
export function fitLayerOverhead(measured: MeasuredStep): CostConstants & { clamped: boolean } {
  checkStep(measured.stepSeconds, 'stepSeconds');
  const bandwidthEfficiency = measured.request.options?.bandwidthEfficiency ?? 1;
  const terms = stepTerms(measured.plan, measured.request);
  const fixed = terms.bytesSeconds / bandwidthEfficiency + terms.interconnectSeconds;
  const layerOverheadSeconds = (measured.stepSeconds - fixed) / terms.overheadCount;
  const clamped = layerOverheadSeconds < -ROUNDING_SLACK * measured.stepSeconds;
  return { bandwidthEfficiency, layerOverheadSeconds: Math.max(0, layerOverheadSeconds), clamped };
}

/**
 * Both constants from two measured steps that read different bytes (the same plan at two KV lengths,
 * as bench/cuda-decode-e2e fits them, or two plans).
 * @throws ValidationError when the two steps read the same bytes (nothing to tell the constants apart
 *   by), or the fit leaves the efficiency outside (0, 1] or the overhead negative: the steps do not
 *   follow the cost model's form.
 */
export function fitCostConstants(first: MeasuredStep, second: MeasuredStep): CostConstants {
  checkStep(first.stepSeconds, 'first.stepSeconds');
  checkStep(second.stepSeconds, 'second.stepSeconds');
  const [a, b] = [stepTerms(first.plan, first.request), stepTerms(second.plan, second.request)];
  // step - interconnect = bytes x (1 / efficiency) + count x overhead: two equations, two unknowns
  const [ya, yb] = [first.stepSeconds - a.interconnectSeconds, second.stepSeconds - b.interconnectSeconds];
  const determinant = a.bytesSeconds * b.overheadCount - b.bytesSeconds * a.overheadCount;
  if (Math.abs(determinant) <= 1e-12 * Math.max(a.bytesSeconds * b.overheadCount, b.bytesSeconds * a.overheadCount)) {
    throw new ValidationError('the two steps read the same bytes per overhead: they cannot tell the constants apart', [
      { path: '$.second', message: 'expected a step of another KV length or plan' },
    ]);
  }
  const inverseEfficiency = (ya * b.overheadCount - yb * a.overheadCount) / determinant;
  const layerOverheadSeconds = (a.bytesSeconds * yb - b.bytesSeconds * ya) / determinant;
  const bandwidthEfficiency = 1 / inverseEfficiency;
  if (
    !(bandwidthEfficiency > 0 && bandwidthEfficiency <= 1 + ROUNDING_SLACK) ||
    layerOverheadSeconds < -ROUNDING_SLACK * first.stepSeconds
  ) {
    throw new ValidationError(
      `the steps fit bandwidthEfficiency ${bandwidthEfficiency} and layerOverheadSeconds ${layerOverheadSeconds}: ` +
        'expected an efficiency in (0, 1] and an overhead >= 0',
      [{ path: '$', message: 'the measured steps do not follow the cost model' }],
    );
  }
  return {
    bandwidthEfficiency: Math.min(1, bandwidthEfficiency),
    layerOverheadSeconds: Math.max(0, layerOverheadSeconds),
  };
}
