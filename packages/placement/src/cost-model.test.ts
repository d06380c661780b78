import type { ClusterSpec, HeadLoadProfile } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { tinyModel } from './__fixtures__/fixtures.js';
import { allReduceSeconds, maxBatchOf, predictLayers, stepSeconds } from './cost-model.js';
import { resolvePlacementProblem } from './placement-request.js';
import { predictPlan, solvePlacement } from './solve-placement.js';
import { contiguousLayer } from './solvers/contiguous.js';

const model = tinyModel(1, 2);
const profile: HeadLoadProfile = {
  version: 1,
  layerCount: 1,
  kvHeadCount: 2,
  contextLength: 1000,
  mean: [[100, 300]],
  sampleCount: 1,
  policy: { name: 'test', settings: {} },
  source: 'hand-made',
};
function cluster(deviceCount: number): ClusterSpec {
  return {
    name: 'test',
    devices: Array.from({ length: deviceCount }, () => ({
      name: 'T',
      memoryBytes: 1e7,
      memoryBandwidthBytesPerSecond: 1e12,
    })),
    interconnect: { name: 'link', allReduceBandwidthBytesPerSecond: 1e11, latencySeconds: 1e-6 },
  };
}

describe('cost model (docs/cost-model.md), by hand on a 1-layer 2-head model', () => {
  const problem = resolvePlacementProblem({ model, profile, cluster: cluster(2), batch: 4 });
  const layers = [contiguousLayer(2, 2)];
  const slice = (2 * 2 + 2) * 64 * 512 * 2;
  const base = (3 * 512 * 1024 * 2) / 2 + 2 * 512 * 2;
  const kvPerToken = 2 * 64 * 2;

  it('step time = slowest device per layer + two all-reduces + output stage', () => {
    const device1 = (base + slice + 4 * 300 * kvPerToken) / 1e12 + 1e-5;
    const allReduce = (4 * 512 * 2) / 1e11 + 2e-6;
    const output = (4 * 512 * 2 + (1000 * 512 * 2) / 2 + 512 * 2) / 1e12 + 1e-5 + (0.5 * 4 * 1000 * 4) / 1e11 + 1e-6;
    expect(allReduceSeconds(problem, 4)).toBeCloseTo(allReduce, 15);
    expect(stepSeconds(problem, layers, 4)).toBeCloseTo(device1 + 2 * allReduce + output, 15);
    const predicted = predictLayers(problem, layers, 4);
    expect(predicted.stepTimeSeconds).toBeCloseTo(device1 + 2 * allReduce + output, 15);
    expect(predicted.throughputTokensPerSecond).toBeCloseTo(4 / predicted.stepTimeSeconds, 6);
    expect(predicted.layerMaxSeconds[0]).toBeCloseTo(device1, 15);
    expect(predicted.layerMeanSeconds[0]).toBeCloseTo((base * 2 + 2 * slice + 4 * 400 * kvPerToken) / 2e12 + 1e-5, 15);
  });

  it('bandwidthEfficiency divides every byte term by the bandwidth reached, not the fixed and link costs', () => {
    const slower = resolvePlacementProblem({
      model,
      profile,
      cluster: cluster(2),
      batch: 4,
      options: { bandwidthEfficiency: 0.5 },
    });
    const device1 = (base + slice + 4 * 300 * kvPerToken) / 0.5e12 + 1e-5;
    const allReduce = (4 * 512 * 2) / 1e11 + 2e-6;
    const output = (4 * 512 * 2 + (1000 * 512 * 2) / 2 + 512 * 2) / 0.5e12 + 1e-5 + (0.5 * 4 * 1000 * 4) / 1e11 + 1e-6;
    expect(stepSeconds(slower, layers, 4)).toBeCloseTo(device1 + 2 * allReduce + output, 15);
    // memory is unchanged
    expect(predictLayers(slower, layers, 4).devices.map((d) => d.memoryBytes)).toEqual(
      predictLayers(problem, layers, 4).devices.map((d) => d.memoryBytes),
    );
  });

  it('memory = weights (with copies) + batch x KV; max batch from the fullest device', () => {
    const weights = base + (2 * 1000 * 512 * 2) / 2 + 512 * 2 + slice;
    const predicted = predictLayers(problem, layers, 4);
    expect(predicted.devices[1]).toMatchObject({
      weightBytes: weights,
      kvBytesPerRequest: 300 * kvPerToken,
      kvBytes: 4 * 300 * kvPerToken,
    });
    expect(predicted.devices[1]!.memoryBytes).toBe(weights + 4 * 300 * kvPerToken);
    expect(maxBatchOf(problem, layers)).toBe(Math.floor((9e6 - weights) / (300 * kvPerToken)));
    expect(predicted.memoryMaxBytes).toBe(predicted.devices[1]!.memoryBytes);
    expect(predicted.fits).toBe(true);
  });

  it('efficiency is the balanced ideal over the achieved step time', () => {
    const predicted = predictLayers(problem, layers, 4);
    expect(predicted.efficiency).toBeCloseTo(predicted.idealStepTimeSeconds / predicted.stepTimeSeconds, 12);
    expect(predicted.efficiency).toBeLessThan(1);
    const single = resolvePlacementProblem({ model, profile, cluster: cluster(1), batch: 4 });
    expect(allReduceSeconds(single, 4)).toBe(0);
    expect(predictLayers(single, [contiguousLayer(2, 1)], 4).efficiency).toBeCloseTo(1, 12);
  });

  it('a copy pays its weight slice in time and memory and splits the KV', () => {
    const copied = [
      {
        heads: [
          { kvHead: 0, replicas: [{ device: 0, share: 1 }] },
          {
            kvHead: 1,
            replicas: [
              { device: 0, share: 0.25 },
              { device: 1, share: 0.75 },
            ],
          },
        ],
      },
    ];
    const predicted = predictLayers(problem, copied, 4);
    expect(predicted.copyCount).toBe(1);
    expect(predicted.devices[0]!.weightBytes - predicted.devices[1]!.weightBytes).toBe(slice);
    expect(predicted.devices[0]!.kvBytesPerRequest).toBeCloseTo((100 + 75) * kvPerToken, 9);
    expect(predicted.layerMaxSeconds[0]).toBeCloseTo((base + 2 * slice + 4 * 175 * kvPerToken) / 1e12 + 1e-5, 15);
  });

  it('predictPlan re-scores a solved plan identically and at max batch for batch "max"', () => {
    const result = solvePlacement({ model, profile, cluster: cluster(2), batch: 4, solver: 'fair-copy' });
    expect(predictPlan(result.plan, { model, profile, cluster: cluster(2), batch: 4 })).toEqual(result.predicted);
    const atMax = predictPlan(result.plan, { model, profile, cluster: cluster(2), batch: 'max' });
    expect(atMax.batch).toBe(result.predicted.maxBatch);
    expect(() => predictPlan(result.plan, { model, profile, cluster: cluster(3), batch: 4 })).toThrow(/deviceCount|3/);
  });
});
