import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deviceTimes, type LayerCosts } from '../solvers/layer-costs.js';
import { solveLayerByGroups } from './group-bound.js';
import { solveLayerByDeviceClasses } from './group-bound-classes.js';

function costs(loads: number[], devices: number, weight: number, base = 0): LayerCosts {
  return {
    base: new Array(devices).fill(base),
    weight: new Array(devices).fill(weight),
    kv: loads.map((load) => new Array(devices).fill(load)),
  };
}

describe('group bound (exact layer optimum on identical devices)', () => {
  it('splits a heavy head when the copy pays for itself: loads [10, 1], weight 1, 2 devices -> 7', () => {
    const layer = costs([10, 1], 2, 1);
    const solution = solveLayerByGroups(layer, 2)!;
    expect(solution.lowerBound).toBeCloseTo(7, 12); // (10 + 1 + 1 x (2 heads + 2 devices - 1)) / 2
    expect(Math.max(...deviceTimes(layer, solution.shares!))).toBeLessThanOrEqual(7 * (1 + 1e-8));
    expect(solution.shares![0]!.size).toBe(2);
  });

  it('does not split when copies cost more than they level: loads [3, 3, 2, 2, 2], weight 5, 2 devices', () => {
    const layer = costs([3, 3, 2, 2, 2], 2, 5);
    const solution = solveLayerByGroups(layer, 2)!;
    // no split: {3, 3} and {2, 2, 2} -> max(6 + 10, 6 + 15) = 21; {3, 2, 2} and {3, 2} -> max(7 + 15, 5 + 10) = 22;
    // one group over 2 devices: (12 + 5 x 6) / 2 = 21
    expect(solution.lowerBound).toBeCloseTo(21, 12);
    expect(Math.max(...deviceTimes(layer, solution.shares!))).toBeLessThanOrEqual(21 * (1 + 1e-9));
  });

  it('reaches the balanced bound with free copies (McNaughton)', () => {
    const layer = costs([9, 1, 1, 1], 4, 0, 2);
    const solution = solveLayerByGroups(layer, 4)!;
    expect(solution.lowerBound).toBeCloseTo(2 + 12 / 4, 12);
    for (const replicas of solution.shares!)
      expect([...replicas.values()].reduce((sum, share) => sum + share, 0)).toBeCloseTo(1, 12);
  });

  it('keeps the bound but gives no placement when the replica cap forbids the wrap-around', () => {
    const solution = solveLayerByGroups(costs([10, 1], 2, 1), 1)!;
    expect(solution.lowerBound).toBeCloseTo(7, 12);
    expect(solution.shares).toBeNull();
  });

  it('declines devices of different speed and more than 12 heads', () => {
    const mixed = costs([1, 2], 2, 1);
    mixed.kv[0]![1] = 0.5;
    expect(solveLayerByGroups(mixed, 2)).toBeNull();
    expect(solveLayerByGroups(costs(new Array(13).fill(1), 2, 1), 2)).toBeNull();
  });
});

describe('group bound over device classes (devices of different bandwidth)', () => {
  it('agrees with the identical-device form when all devices are alike (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 1, maxLength: 7 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 200_000 }),
        fc.integer({ min: 0, max: 500_000 }),
        (loads, devices, weightBytes, baseBytes) => {
          const bandwidth = 1e9;
          const overhead = 1e-6;
          const byClass = solveLayerByDeviceClasses(
            { loads, weightBytes, baseBytes, overheadSeconds: overhead, bandwidth: new Array(devices).fill(bandwidth) },
            devices,
          )!;
          const identical = solveLayerByGroups(
            {
              base: new Array(devices).fill(baseBytes / bandwidth + overhead),
              weight: new Array(devices).fill(weightBytes / bandwidth),
              kv: loads.map((load) => new Array(devices).fill(load / bandwidth)),
            },
            devices,
          )!;
          expect(byClass.lowerBound).toBeCloseTo(identical.lowerBound, 12);
          expect(byClass.shares).not.toBeNull();
        },
      ),
      { numRuns: 60 },
    );
  });

  it('puts more work on the faster device: loads [6, 6], two devices at 1 and 2 bytes/s, no weights', () => {
    const solution = solveLayerByDeviceClasses(
      { loads: [6, 6], weightBytes: 0, baseBytes: 0, overheadSeconds: 0, bandwidth: [1, 2] },
      2,
    )!;
    expect(solution.lowerBound).toBeCloseTo(4, 12); // 12 bytes over 3 bytes/s
    const onFast = solution.shares!.reduce((sum, replicas, head) => sum + (replicas.get(1) ?? 0) * [6, 6][head]!, 0);
    expect(onFast).toBeCloseTo(8, 6);
  });
});
