import { describe, expect, it } from 'vitest';
import { CLUSTER_PRESET_NAMES, createCluster, validateClusterSpec } from './cluster.js';
import { ValidationError } from './errors.js';
import { assertValidPlan, type Plan, parsePlan, validatePlan } from './plan.js';

function twoLayerPlan(): Plan {
  return {
    version: 1,
    solver: 'test',
    deviceCount: 2,
    layers: [
      {
        heads: [
          { kvHead: 0, replicas: [{ device: 0, share: 1 }] },
          { kvHead: 1, replicas: [{ device: 1, share: 1 }] },
        ],
      },
      {
        heads: [
          {
            kvHead: 1,
            replicas: [
              { device: 0, share: 0.25 },
              { device: 1, share: 0.75 },
            ],
          },
          { kvHead: 0, replicas: [{ device: 0, share: 1 }] },
        ],
      },
    ],
    predicted: {
      stepTimeSeconds: 0.01,
      maxBatch: 4,
      throughputTokensPerSecond: 400,
      devices: [
        { memoryBytes: 10e9, kvBytes: 1e9 },
        { memoryBytes: 90e9, kvBytes: 2e9 },
      ],
    },
  };
}

describe('plan validator', () => {
  it('accepts a valid plan with copies', () => {
    expect(validatePlan(twoLayerPlan(), { model: { layerCount: 2, kvHeadCount: 2 } })).toEqual({
      valid: true,
      issues: [],
    });
  });

  it('returns every violation with its JSON path', () => {
    const plan = twoLayerPlan();
    plan.layers[0]!.heads[1] = {
      kvHead: 0,
      replicas: [
        { device: 2, share: 0.5 },
        { device: 2, share: 0 },
      ],
    };
    const { valid, issues } = validatePlan(plan, { model: { layerCount: 3, kvHeadCount: 2 } });
    expect(valid).toBe(false);
    const byPath = Object.fromEntries(issues.map((issue) => [issue.path, issue.message]));
    expect(byPath['$.layers']).toMatch(/expected 3 layers/);
    expect(byPath['$.layers[0].heads[1].kvHead']).toMatch(/already placed at heads\[0\]/);
    expect(byPath['$.layers[0].heads[1].replicas[0].device']).toMatch(/device 2 out of range 0\.\.1/);
    expect(byPath['$.layers[0].heads[1].replicas[1].device']).toMatch(/already hosts replicas\[0\]/);
    expect(byPath['$.layers[0].heads[1].replicas[1].share']).toMatch(/share must be in \(0, 1\], got 0/);
    expect(byPath['$.layers[0].heads[1].replicas']).toMatch(/shares sum to 0.5/);
    expect(byPath['$.layers[0].heads']).toMatch(/kv head 1 is missing/);
  });

  it('checks shares to 1e-9 and memory against the cluster', () => {
    const plan = twoLayerPlan();
    plan.layers[1]!.heads[0]!.replicas[1]!.share = 0.75 + 2e-9;
    expect(validatePlan(plan).issues[0]!.path).toBe('$.layers[1].heads[0].replicas');
    plan.layers[1]!.heads[0]!.replicas[1]!.share = 0.75 + 5e-10;
    expect(validatePlan(plan).valid).toBe(true);
    const report = validatePlan(plan, { cluster: createCluster('h100-sxm-80g', 2) });
    expect(report.issues).toEqual([
      {
        path: '$.predicted.devices[1].memoryBytes',
        message: 'needs 90000000000 bytes but device 1 (H100 SXM 80GB) has 80000000000: short by 10000000000',
      },
    ]);
    expect(validatePlan(plan, { cluster: createCluster('h200-141g', 2) }).valid).toBe(true);
    expect(validatePlan(plan, { cluster: createCluster('h200-141g', 4) }).issues[0]!.path).toBe('$.deviceCount');
  });

  it('rejects malformed documents by path and throws ValidationError from assert/parse', () => {
    expect(validatePlan({ version: 2 }).issues.map((issue) => issue.path)).toEqual(
      expect.arrayContaining(['$.version', '$.solver', '$.deviceCount', '$.layers', '$.predicted']),
    );
    expect(validatePlan(null).valid).toBe(false);
    expect(() => assertValidPlan({ ...twoLayerPlan(), deviceCount: 0 })).toThrow(ValidationError);
    expect(() => parsePlan('[1,', {}, 'plan.json')).toThrow(/plan\.json: not valid JSON/);
    const text = JSON.stringify({ ...twoLayerPlan(), deviceCount: 1 });
    expect(() => parsePlan(text, {}, 'plan.json')).toThrow(
      /plan\.json: invalid plan:\n.*\$\.layers\[0\]\.heads\[1\]\.replicas\[0\]\.device/s,
    );
    expect(parsePlan(JSON.stringify(twoLayerPlan())).solver).toBe('test');
  });
});

describe('cluster presets', () => {
  it('has the four presets with datasheet numbers', () => {
    expect(CLUSTER_PRESET_NAMES).toEqual(['h100-sxm-80g', 'h200-141g', 'a100-80g', 'cpu']);
    const h100 = createCluster('h100-sxm-80g', 8);
    expect(h100.devices).toHaveLength(8);
    expect(h100.devices[0]!.memoryBandwidthBytesPerSecond).toBe(3.35e12);
    expect(createCluster('h200-141g', 1).devices[0]!.memoryBytes).toBe(141e9);
    expect(validateClusterSpec(JSON.parse(JSON.stringify(h100)))).toEqual(h100);
  });

  it('rejects bad presets, counts and specs by name', () => {
    expect(() => createCluster('tpu', 2)).toThrow(/unknown cluster preset "tpu": expected one of h100-sxm-80g/);
    expect(() => createCluster('h100-sxm-80g', 9)).toThrow(
      /deviceCount: expected an integer from 1 to 8 for h100-sxm-80g, got 9/,
    );
    expect(() => validateClusterSpec({ name: 'x', devices: [], interconnect: {} })).toThrow(/\$\.devices/);
  });
});
