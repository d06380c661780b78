import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createFixtureModel } from './fixture-model.js';
import type { WritableGgmlType } from './ggml-quantize.js';
import { loadModel } from './load-model.js';
import type { ModelWeights, WeightInfo } from './model-weights.js';
import { matrixStoredTypes, nativeDtype } from './native-dtype.js';
import type { WritableSafetensorsDtype } from './safetensors-writer.js';

const TINY = { layerCount: 2, hiddenSize: 64, queryHeadCount: 2, kvHeadCount: 1, headDim: 32, ffnSize: 64 } as const;

describe('nativeDtype', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fairkv-native-dtype-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function ggufOf(tensorType: WritableGgmlType) {
    const files = await createFixtureModel(join(dir, `gguf-${tensorType}`), {
      ...TINY,
      gguf: { tensorType },
      huggingFace: false,
    });
    return loadModel(files.ggufPath!);
  }

  async function huggingFaceOf(dtype: WritableSafetensorsDtype) {
    const files = await createFixtureModel(join(dir, `hf-${dtype}`), { ...TINY, gguf: false, huggingFace: { dtype } });
    return loadModel(files.huggingFaceFolder!);
  }

  it.each([
    ['f32', 'f32'],
    ['f64', 'f32'],
    ['f16', 'f16'],
    ['bf16', 'bf16'],
    ['q8_0', 'f16'],
    ['q4_0', 'f16'],
  ] as const)('a GGUF with %s matrices runs in %s', async (stored, expected) => {
    const model = await ggufOf(stored);
    try {
      expect(matrixStoredTypes(model)).toEqual([stored]);
      expect(nativeDtype(model)).toBe(expected);
    } finally {
      model.close();
    }
  });

  it.each([
    ['F32', 'f32'],
    ['F16', 'f16'],
    ['BF16', 'bf16'],
  ] as const)('a Hugging Face checkpoint in %s runs in %s', async (stored, expected) => {
    const model = await huggingFaceOf(stored);
    try {
      expect(nativeDtype(model)).toBe(expected);
    } finally {
      model.close();
    }
  });

  /** The loaded f32 fixture's weights with some stored types replaced. */
  async function withTypes(types: (name: string) => string | undefined) {
    const model = await ggufOf('f32');
    const weights: ModelWeights = {
      ...model.weights,
      info: (name: string): WeightInfo => {
        const info = model.weights.info(name);
        return { ...info, storedType: types(name) ?? info.storedType };
      },
    };
    return { config: model.config, weights, close: () => model.close() };
  }

  it.each([
    [
      'one f32 matrix among bf16 ones',
      (name: string) => (name === 'layers.1.feedForward.down' ? undefined : 'bf16'),
      'f32',
    ],
    ['bf16 and f16 matrices', (name: string) => (name.startsWith('layers.0') ? 'bf16' : 'f16'), 'f32'],
    ['bf16 with quantised blocks', (name: string) => (name.endsWith('.wv') ? 'q6_K' : 'bf16'), 'bf16'],
    ['f16 with quantised blocks', (name: string) => (name.endsWith('.down') ? 'q4_K' : 'f16'), 'f16'],
    ['a bf16 output head over f16 layers', (name: string) => (name === 'output' ? 'bf16' : 'f16'), 'f32'],
    ['f32 norms beside bf16 matrices', (name: string) => (name.endsWith('Norm') ? undefined : 'bf16'), 'bf16'],
  ])('%s', async (_case, types, expected) => {
    const model = await withTypes(types);
    try {
      expect(nativeDtype(model)).toBe(expected);
    } finally {
      model.close();
    }
  });
});
