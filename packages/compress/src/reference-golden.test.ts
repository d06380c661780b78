import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { plainIndices } from './__fixtures__/observations.js';
import type { CompressionPolicy } from './compose-policy.js';
import type { LayerObservation } from './observation.js';
import { adaKvPolicy } from './policies/ada-kv.js';
import { h2oPolicy } from './policies/h2o.js';
import { headKvPolicy } from './policies/headkv.js';
import { pyramidKvPolicy } from './policies/pyramidkv.js';
import { snapKvPolicy } from './policies/snapkv.js';

/**
 * Golden cases from `__fixtures__/reference-golden.py`: an independent numpy rendering of the reference code's
 * formulas (sort / flatten / top-k / scatter-add / torch.round on float32), over random causal-softmax inputs
 * with no ties. Every policy must keep exactly the same tokens, to the index.
 */
interface Golden {
  seqLen: number;
  queryHeadCount: number;
  kvHeadCount: number;
  windowSize: number;
  layerCount: number;
  kernelSize: number;
  averageBudget: number;
  headkv: { importance: number[][]; beta: number; temperature: number };
  layers: ({ windowScores: string; accumulatedAttention: string } & Record<string, number[][] | string>)[];
}

const golden = JSON.parse(
  readFileSync(new URL('./__fixtures__/reference-golden.json', import.meta.url), 'utf8'),
) as Golden;

function floats(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

const scoring = { averageBudget: golden.averageBudget, windowSize: golden.windowSize, kernelSize: golden.kernelSize };
const policies: Record<string, CompressionPolicy> = {
  snapkv: snapKvPolicy(scoring),
  pyramidkv: pyramidKvPolicy(scoring),
  adakv02: adaKvPolicy({ ...scoring, floorAlpha: 0.2 }),
  adakv05: adaKvPolicy({ ...scoring, floorAlpha: 0.5 }),
  kvpress05: adaKvPolicy({ ...scoring, floorAlpha: 0.5, variant: 'kvpress' }),
  kvpress09: adaKvPolicy({ ...scoring, floorAlpha: 0.9, variant: 'kvpress' }),
  headkv: headKvPolicy({ ...scoring, ...golden.headkv }),
  h2o: h2oPolicy({ heavySize: golden.averageBudget - golden.windowSize, recentSize: golden.windowSize }),
};

describe('policies against the numpy rendering of the reference formulas', () => {
  for (const [name, policy] of Object.entries(policies)) {
    it(`${name} keeps the same tokens in every layer`, () => {
      golden.layers.forEach((layer, layerIndex) => {
        const observation: LayerObservation = {
          seqLen: golden.seqLen,
          queryHeadCount: golden.queryHeadCount,
          kvHeadCount: golden.kvHeadCount,
          windowScores: floats(layer.windowScores),
          accumulatedAttention: floats(layer.accumulatedAttention),
        };
        const result = policy.compressLayer(observation, { layerIndex, layerCount: golden.layerCount });
        expect(plainIndices(result.indices), `layer ${layerIndex}`).toEqual(layer[name]);
      });
    });
  }
});
