import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '@fairkv/core';
import { createCpuBackend } from '@fairkv/kernels';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GQA_SHAPE, threeDevicePlan } from '../__fixtures__/gqa-three-devices.js';
import { createFixtureModel } from '../model/fixture-model.js';
import { decodeBfloat16Array, decodeFloat16Array } from '../model/float16.js';
import { loadModel } from '../model/load-model.js';
import type { LoadedModel } from '../model/loaded-model.js';
import { halfStoredType } from '../model/model-weights.js';
import { SoloCommunicator } from './communicator.js';
import { createInferenceEngine } from './create-engine.js';
import { type DeviceShard, deviceShardsFromPlan } from './device-shards.js';
import { ShardForward } from './shard-forward.js';
import { type HostWeight, joined, type ShardWeights, sliceShardWeights } from './shard-weights.js';

const root = mkdtempSync(join(tmpdir(), 'fairkv-shard-weights-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const SHAPE = GQA_SHAPE;

let bf16Gguf: LoadedModel;
let bf16Folder: LoadedModel;
let f16Folder: LoadedModel;
let shards: DeviceShard[];

beforeAll(async () => {
  const gguf = await createFixtureModel(join(root, 'gguf'), {
    ...SHAPE,
    gguf: { tensorType: 'bf16' },
    huggingFace: false,
  });
  const bf16 = await createFixtureModel(join(root, 'hf-bf16'), {
    ...SHAPE,
    gguf: false,
    huggingFace: { dtype: 'BF16' },
  });
  const f16 = await createFixtureModel(join(root, 'hf-f16'), { ...SHAPE, gguf: false, huggingFace: { dtype: 'F16' } });
  bf16Gguf = await loadModel(gguf.ggufPath!);
  bf16Folder = await loadModel(bf16.huggingFaceFolder!);
  f16Folder = await loadModel(f16.huggingFaceFolder!);
  const plan = threeDevicePlan(bf16Gguf.config);
  shards = deviceShardsFromPlan(plan, bf16Gguf.config).shards;
});
afterAll(() => {
  for (const model of [bf16Gguf, bf16Folder, f16Folder]) model?.close();
});

/** Every host weight of a shard with its canonical weight name (for the stored type). */
function entries(weights: ShardWeights): [string, HostWeight][] {
  const out: [string, HostWeight][] = [['tokenEmbedding', weights.tokenEmbedding]];
  const kinds = {
    attentionNorm: 'attentionNorm',
    wq: 'attention.wq',
    wk: 'attention.wk',
    wv: 'attention.wv',
    wo: 'attention.wo',
    ffnNorm: 'feedForwardNorm',
    wGate: 'feedForward.gate',
    wUp: 'feedForward.up',
    wDown: 'feedForward.down',
  } as const;
  weights.layers.forEach((layer, l) => {
    for (const [field, kind] of Object.entries(kinds))
      out.push([`layers.${l}.${kind}`, layer[field as keyof typeof kinds]]);
  });
  if (weights.outputNorm) out.push(['outputNorm', weights.outputNorm]);
  if (weights.output) out.push(['output', weights.output]);
  return out;
}

function widened(bits: Uint16Array, dtype: 'f16' | 'bf16'): Float32Array {
  const bytes = new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
  const out = new Float32Array(bits.length);
  if (dtype === 'bf16') decodeBfloat16Array(bytes, 0, bits.length, out);
  else decodeFloat16Array(bytes, 0, bits.length, out);
  return out;
}

describe('sliceShardWeights: f16 / bf16 weights to a device of the same dtype', () => {
  for (const [label, dtype, model] of [
    ['bf16 GGUF', 'bf16', () => bf16Gguf],
    ['BF16 safetensors', 'bf16', () => bf16Folder],
    ['F16 safetensors', 'f16', () => f16Folder],
  ] as const) {
    it(`${label}: raw bit patterns that decode to exactly the float32 slices, on every device`, async () => {
      const loaded = model();
      let rawCount = 0;
      for (const shard of shards) {
        const floats = entries(await sliceShardWeights(loaded.weights, loaded.config, shard));
        const raw = entries(await sliceShardWeights(loaded.weights, loaded.config, shard, { dtype }));
        expect(raw.map(([name]) => name)).toEqual(floats.map(([name]) => name));
        raw.forEach(([name, weight], index) => {
          const expected = floats[index]![1] as Float32Array;
          expect(expected).toBeInstanceOf(Float32Array);
          const stored = halfStoredType(loaded.weights.info(name).storedType);
          if (stored === dtype) {
            expect(weight, name).toBeInstanceOf(Uint16Array);
            expect(widened(weight as Uint16Array, dtype), name).toEqual(expected);
            rawCount++;
          } else {
            expect(weight, name).toEqual(expected);
          }
        });
      }
      // the projections and the MLP at least are stored in the model's 16-bit type
      expect(rawCount).toBeGreaterThanOrEqual(shards.length * SHAPE.layerCount * 7);
    });
  }

  it('reads float32 for another device dtype, or a source without the raw reads', async () => {
    for (const shard of shards) {
      for (const weights of [
        await sliceShardWeights(bf16Gguf.weights, bf16Gguf.config, shard, { dtype: 'f16' }),
        await sliceShardWeights(bf16Gguf.weights, bf16Gguf.config, shard, { dtype: 'f32' }),
        await sliceShardWeights(
          {
            read: (name) => bf16Gguf.weights.read(name),
            readRows: (name, first, count) => bf16Gguf.weights.readRows(name, first, count),
            readColumns: (name, first, count) => bf16Gguf.weights.readColumns(name, first, count),
          },
          bf16Gguf.config,
          shard,
          { dtype: 'bf16' },
        ),
      ]) {
        for (const [name, weight] of entries(weights)) expect(weight, name).toBeInstanceOf(Float32Array);
      }
    }
  });

  it('refuses raw 16-bit reads of a weight stored in another type', async () => {
    const f32 = await createFixtureModel(join(root, 'f32'), { ...SHAPE, huggingFace: false });
    const model = await loadModel(f32.ggufPath!);
    try {
      await expect(model.weights.readRowBits('layers.0.attention.wq', 0, 1)).rejects.toThrow(
        /layers\.0\.attention\.wq: stored as f32; raw 16-bit reads need f16 or bf16/,
      );
    } finally {
      model.close();
    }
  });

  it('a bf16 model on bf16 devices generates the same tokens sharded over 3 devices as on one', async () => {
    const generate = async (sharded: boolean) => {
      const engine = await createInferenceEngine({
        model: bf16Gguf,
        ...(sharded ? { plan: threeDevicePlan(bf16Gguf.config) } : {}),
        dtype: 'bf16',
        execution: 'inline',
        maxPositions: 64,
        kvTokensPerDevice: 1024,
      });
      try {
        return (await engine.generate([1, 2, 3, 4, 5], { maxTokens: 6, stopAtEos: false }).result).tokenIds;
      } finally {
        await engine.dispose();
      }
    };
    expect(await generate(true)).toEqual(await generate(false));
  });
});

describe('ShardForward weights', () => {
  it('refuses a fused projection whose parts mix f32 and raw 16-bit weights, naming it', async () => {
    const shard = shards[0]!;
    const weights = await sliceShardWeights(bf16Gguf.weights, bf16Gguf.config, shard, { dtype: 'bf16' });
    const layer = weights.layers[0]!;
    const mixed: ShardWeights = {
      ...weights,
      layers: [{ ...layer, wk: widened(layer.wk as Uint16Array, 'bf16') }, ...weights.layers.slice(1)],
    };
    const backend = createCpuBackend();
    try {
      const create = () =>
        new ShardForward({
          backend,
          config: bf16Gguf.config,
          shard,
          weights: mixed,
          communicator: new SoloCommunicator(),
          dtype: 'bf16',
        });
      expect(create).toThrow(ValidationError);
      expect(create).toThrow(/layers\.0\.wqkv: its parts mix f32 and raw 16-bit weights/);
    } finally {
      backend.dispose();
    }
  });
});

describe('joined', () => {
  it('puts parts one after another; a single part comes back as it is, not copied', () => {
    const allocate = (length: number) => new Uint16Array(length);
    const parts = [Uint16Array.of(1, 2), Uint16Array.of(3), Uint16Array.of(4, 5, 6)];
    expect(Array.from(joined(parts, allocate))).toEqual([1, 2, 3, 4, 5, 6]);
    const single = Float32Array.of(0.5, -1);
    expect(joined([single], (length) => new Float32Array(length))).toBe(single);
  });
});
