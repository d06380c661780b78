import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Plan } from '@fairkv/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceLlama } from '../__fixtures__/reference-llama.js';
import { createFixtureModel } from '../model/fixture-model.js';
import { loadModel } from '../model/load-model.js';
import type { LoadedModel } from '../model/loaded-model.js';
import { nativeDtype } from '../model/native-dtype.js';
import { createInferenceEngine } from './create-engine.js';

// MHA, head dim 64, half-split (Hugging Face / NeoX) RoPE, sharded safetensors: shapes stories260K lacks.
const dir = mkdtempSync(join(tmpdir(), 'fairkv-engine-fixture-'));
let huggingFace: LoadedModel;
let gguf: LoadedModel;

beforeAll(async () => {
  const files = await createFixtureModel(dir, {
    seed: 11,
    layerCount: 2,
    hiddenSize: 128,
    queryHeadCount: 2,
    kvHeadCount: 2,
    headDim: 64,
    ffnSize: 96,
    maxContext: 64,
    huggingFace: { shardCount: 2 },
  });
  huggingFace = await loadModel(files.huggingFaceFolder!);
  gguf = await loadModel(files.ggufPath!);
});
afterAll(() => {
  huggingFace?.close();
  gguf?.close();
  rmSync(dir, { recursive: true, force: true });
});

function splitPlan(): Plan {
  // kv head 0 on device 0; kv head 1 copied on both devices (Fair-Copying)
  return {
    version: 1,
    solver: 'test',
    deviceCount: 2,
    layers: [0, 1].map(() => ({
      heads: [
        { kvHead: 0, replicas: [{ device: 0, share: 1 }] },
        {
          kvHead: 1,
          replicas: [
            { device: 1, share: 0.5 },
            { device: 0, share: 0.5 },
          ],
        },
      ],
    })),
    predicted: {
      stepTimeSeconds: 0,
      maxBatch: 0,
      throughputTokensPerSecond: 0,
      devices: [
        { memoryBytes: 0, kvBytes: 0 },
        { memoryBytes: 0, kvBytes: 0 },
      ],
    },
  };
}

describe('engine on the generated fixture model (MHA, head dim 64, half-split RoPE, sharded safetensors)', () => {
  it('matches a float64 reference forward pass, on one device and on two with a copied head', async () => {
    expect(huggingFace.config.ropeLayout).toBe('half-split');
    const prompt = [1, 17, 42, 99, 7, 64, 3];
    for (const plan of [undefined, splitPlan()]) {
      const engine = await createInferenceEngine({
        model: huggingFace,
        ...(plan ? { plan } : {}),
        execution: 'inline',
        maxPositions: 64,
        kvTokensPerDevice: 1024,
      });
      try {
        const result = await engine.generate(prompt, { maxTokens: 6, returnLogits: true, stopAtEos: false }).result;
        const reference = await ReferenceLlama.load(huggingFace);
        let logits: Float64Array = new Float64Array(0);
        for (const token of prompt) logits = reference.forward(token);
        result.tokenIds.forEach((token, i) => {
          const ours = result.logits![i]!;
          let diff = 0;
          let scale = 0;
          for (let v = 0; v < ours.length; v++) {
            diff = Math.max(diff, Math.abs(ours[v]! - logits[v]!));
            scale = Math.max(scale, Math.abs(logits[v]!));
          }
          expect(diff / scale, `position ${i}`).toBeLessThan(1e-5);
          let best = 0;
          for (let v = 1; v < logits.length; v++) if (logits[v]! > logits[best]!) best = v;
          expect(token, `position ${i}`).toBe(best);
          logits = reference.forward(token);
        });
      } finally {
        await engine.dispose();
      }
    }
  });

  it('gives the same tokens from the GGUF copy (adjacent RoPE layout) as from the safetensors copy', async () => {
    expect(gguf.config.ropeLayout).toBe('adjacent');
    const run = async (model: LoadedModel) => {
      const engine = await createInferenceEngine({
        model,
        execution: 'inline',
        maxPositions: 64,
        kvTokensPerDevice: 1024,
      });
      try {
        return (await engine.generate([1, 5, 9, 13], { maxTokens: 8, stopAtEos: false }).result).tokenIds;
      } finally {
        await engine.dispose();
      }
    };
    expect(await run(gguf)).toEqual(await run(huggingFace));
  });
});

describe('a quantised GGUF in the dtype --dtype auto gives it on GPUs', () => {
  it('runs q8_0 weights in an f16 engine within f16 rounding of the f32 engine', async () => {
    const files = await createFixtureModel(join(dir, 'q8'), {
      seed: 5,
      layerCount: 2,
      hiddenSize: 128,
      queryHeadCount: 4,
      kvHeadCount: 2,
      headDim: 32,
      ffnSize: 96,
      maxContext: 64,
      gguf: { tensorType: 'q8_0' },
      huggingFace: false,
    });
    const model = await loadModel(files.ggufPath!);
    try {
      expect(nativeDtype(model)).toBe('f16');
      const run = async (dtype: 'f32' | 'f16') => {
        const engine = await createInferenceEngine({ model, dtype, execution: 'inline', maxPositions: 64 });
        try {
          return (
            await engine.generate([1, 5, 9, 13, 2], { maxTokens: 4, stopAtEos: false, returnLogits: true }).result
          ).logits!;
        } finally {
          await engine.dispose();
        }
      };
      const [full, half] = [await run('f32'), await run('f16')];
      // the first step sees the same prompt in both (later steps may pick other tokens on a random model)
      const [exact, rounded] = [full[0]!, half[0]!];
      let diff = 0;
      let scale = 0;
      for (let v = 0; v < exact.length; v++) {
        diff = Math.max(diff, Math.abs(exact[v]! - rounded[v]!));
        scale = Math.max(scale, Math.abs(exact[v]!));
      }
      expect(diff / scale).toBeGreaterThan(0); // f16 storage really rounds
      expect(diff / scale).toBeLessThan(2e-3);
    } finally {
      model.close();
    }
  });
});
