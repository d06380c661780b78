import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CompressionPolicy, fullPolicy, h2oPolicy, type LayerObservation } from '@fairkv/compress';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GQA_SHAPE, threeDevicePlan } from '../__fixtures__/gqa-three-devices.js';
import { createFixtureModel } from '../model/fixture-model.js';
import { loadModel } from '../model/load-model.js';
import type { LoadedModel } from '../model/loaded-model.js';
import { createInferenceEngine } from './create-engine.js';

const root = mkdtempSync(join(tmpdir(), 'fairkv-h2o-'));
let model: LoadedModel;
beforeAll(async () => {
  const files = await createFixtureModel(root, { ...GQA_SHAPE, huggingFace: false });
  model = await loadModel(files.ggufPath!);
});
afterAll(() => {
  model?.close();
  rmSync(root, { recursive: true, force: true });
});

const PROMPT = Array.from({ length: 40 }, (_, i) => ((i * 37) % 200) + 3);

/** The policy, recording every layer's observation. */
function recording(policy: CompressionPolicy, seen: LayerObservation[]): CompressionPolicy {
  return {
    ...policy,
    compressLayer(observation, position) {
      seen.push(observation);
      return policy.compressLayer(observation, position);
    },
  };
}

async function generate(policy: CompressionPolicy, sharded: boolean) {
  const engine = await createInferenceEngine({
    model,
    ...(sharded ? { plan: threeDevicePlan(model.config) } : {}),
    policy,
    execution: 'inline',
    maxPositions: 64,
    kvTokensPerDevice: 1024,
  });
  try {
    return (await engine.generate(PROMPT, { maxTokens: 6, stopAtEos: false }).result).tokenIds;
  } finally {
    await engine.dispose();
  }
}

describe('H2O through the engine: accumulated attention from the prefill kernel', () => {
  it('equals the column sums of the whole causal softmax, on one device and on three', async () => {
    // the oracle: a policy that reads the whole prompt as its window
    const windows: LayerObservation[] = [];
    const whole = recording(
      { ...fullPolicy(), requirements: { windowRows: PROMPT.length, accumulatedAttention: false, keyNorms: false } },
      windows,
    );
    await generate(whole, false);
    // the window of the whole prompt arrives as its column sums (windowAttentionSums over all rows)
    const expected = windows.map((observation) => {
      expect(observation.windowAttentionRows).toBe(observation.seqLen);
      return observation.windowAttentionSums!;
    });
    for (const sharded of [false, true]) {
      const seen: LayerObservation[] = [];
      await generate(recording(h2oPolicy(), seen), sharded);
      expect(seen).toHaveLength(expected.length);
      seen.forEach((observation, layer) => {
        expect(observation.windowScores).toBeUndefined();
        const actual = observation.accumulatedAttention!;
        expect(actual.length).toBe(expected[layer]!.length);
        let worst = 0;
        actual.forEach((value, i) => {
          worst = Math.max(worst, Math.abs(value - expected[layer]![i]!));
        });
        expect(worst).toBeLessThan(5e-6);
      });
    }
  });

  it('generates the same tokens sharded over three devices (copied heads) as on one', async () => {
    expect(await generate(h2oPolicy(), true)).toEqual(await generate(h2oPolicy(), false));
  });
});
