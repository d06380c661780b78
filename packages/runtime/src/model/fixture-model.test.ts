import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '@fairkv/core';
import { afterAll, describe, expect, it } from 'vitest';
import { ReferenceLlama } from '../__fixtures__/reference-llama.js';
import { createFixtureModel, type FixtureModelOptions } from './fixture-model.js';
import { GgufFile } from './gguf-file.js';
import { loadModel } from './load-model.js';
import type { LoadedModel } from './loaded-model.js';

const root = mkdtempSync(join(tmpdir(), 'fairkv-fixture-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Small but with the shapes stories260K lacks: MHA, head dimension 64. */
const SMALL: FixtureModelOptions = {
  layerCount: 2,
  hiddenSize: 128,
  queryHeadCount: 2,
  kvHeadCount: 2,
  headDim: 64,
  ffnSize: 256,
};
let counter = 0;
const freshDir = () => join(root, `model-${counter++}`);

async function maxLogitDifference(
  first: LoadedModel,
  second: LoadedModel,
  prompt: number[],
  secondLayout = second.config.ropeLayout,
) {
  const a = await ReferenceLlama.load(first);
  const b = await ReferenceLlama.load(second, secondLayout);
  let worst = 0;
  for (const token of prompt) {
    const x = a.forward(token);
    const y = b.forward(token);
    for (let index = 0; index < x.length; index++) worst = Math.max(worst, Math.abs(x[index]! - y[index]!));
  }
  return worst;
}

describe('createFixtureModel', () => {
  it('writes GGUF v3 and a Hugging Face folder that load as the same model', async () => {
    const files = await createFixtureModel(freshDir(), SMALL);
    expect(files.config).toMatchObject({ queryHeadCount: 2, kvHeadCount: 2, headDim: 64, ropeLayout: 'half-split' });
    const gguf = await loadModel(files.ggufPath!);
    const hf = await loadModel(files.huggingFaceFolder!);
    expect(GgufFile.open(files.ggufPath!).version).toBe(3);
    expect(gguf.config.ropeLayout).toBe('adjacent');
    expect(hf.config.ropeLayout).toBe('half-split');
    expect({ ...gguf.config, ropeLayout: 'half-split' }).toEqual(hf.config);
    expect(gguf.config.name).toBe('fairkv-fixture-random');
    for (const model of [gguf, hf]) {
      expect(model.randomWeights).toBe(true);
      expect(model.description).toMatch(/^RANDOM WEIGHTS/);
    }
    expect(hf.tokenizer.kind).toBe('huggingface');
    expect(gguf.tokenizer.kind).toBe('sentencepiece-bpe');
    const prompt = gguf.tokenizer.encode('Once upon a time, Lily ✓');
    expect(hf.tokenizer.encode('Once upon a time, Lily ✓')).toEqual(prompt);
    // the GGUF copy has Q/K rows permuted for adjacent pairs: same function, to float64 rounding
    expect(await maxLogitDifference(gguf, hf, prompt)).toBeLessThan(1e-9);
    // ...and reading the GGUF weights with the other layout is a different function
    expect(await maxLogitDifference(hf, gguf, prompt, 'half-split')).toBeGreaterThan(1e-2);
    gguf.close();
    hf.close();
  });

  it('is deterministic per seed', async () => {
    const first = await createFixtureModel(freshDir(), { ...SMALL, huggingFace: false });
    const second = await createFixtureModel(freshDir(), { ...SMALL, huggingFace: false });
    const other = await createFixtureModel(freshDir(), { ...SMALL, seed: 2, huggingFace: false });
    expect(readFileSync(first.ggufPath!).equals(readFileSync(second.ggufPath!))).toBe(true);
    expect(readFileSync(first.ggufPath!).equals(readFileSync(other.ggufPath!))).toBe(false);
  });

  it('writes sharded safetensors with an index, and untied output weights', async () => {
    const files = await createFixtureModel(freshDir(), {
      ...SMALL,
      tieWordEmbeddings: false,
      huggingFace: { shardCount: 3 },
    });
    const folder = files.huggingFaceFolder!;
    expect(readdirSync(folder).filter((name) => name.endsWith('.safetensors'))).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
    ]);
    const index = JSON.parse(readFileSync(join(folder, 'model.safetensors.index.json'), 'utf8'));
    expect(new Set(Object.values(index.weight_map)).size).toBe(3);
    const hf = await loadModel(folder);
    const gguf = await loadModel(files.ggufPath!);
    expect(hf.config.tieWordEmbeddings).toBe(false);
    expect(gguf.config.tieWordEmbeddings).toBe(false);
    expect(hf.weights.info('output').storedName).toBe('lm_head.weight');
    expect(gguf.weights.info('output').storedName).toBe('output.weight');
    expect(await hf.weights.read('output')).not.toEqual(await hf.weights.read('tokenEmbedding'));
    const prompt = gguf.tokenizer.encode('the ball');
    expect(await maxLogitDifference(gguf, hf, prompt)).toBeLessThan(1e-9);
    hf.close();
    gguf.close();
  });

  it('writes every tensor type and format version, close to the float32 weights', async () => {
    const reference = await loadModel(
      (await createFixtureModel(freshDir(), { ...SMALL, huggingFace: false })).ggufPath!,
    );
    const expected = await reference.weights.read('layers.1.attention.wv');
    const tolerance = { f16: 2e-3, bf16: 2e-2, q8_0: 2e-2, q4_0: 0.3, q4_1: 0.3, f32: 0 } as const;
    for (const [tensorType, bound] of Object.entries(tolerance) as [keyof typeof tolerance, number][]) {
      for (const version of tensorType === 'f32' ? ([1, 2] as const) : ([3] as const)) {
        const files = await createFixtureModel(freshDir(), {
          ...SMALL,
          gguf: { version, tensorType },
          huggingFace: false,
        });
        const model = await loadModel(files.ggufPath!);
        expect(model.weights.info('layers.1.attention.wv').storedType).toBe(tensorType);
        expect(model.weights.info('layers.1.attentionNorm').storedType).toBe('f32');
        const stored = await model.weights.readStoredBytes('layers.1.attention.wv');
        expect(stored.length).toBe(model.weights.info('layers.1.attention.wv').byteLength);
        const read = await model.weights.read('layers.1.attention.wv');
        let worst = 0;
        for (let index = 0; index < read.length; index++)
          worst = Math.max(worst, Math.abs(read[index]! - expected[index]!));
        expect(worst, `${tensorType} v${version}`).toBeLessThanOrEqual(bound);
        model.close();
      }
    }
    for (const dtype of ['F16', 'BF16'] as const) {
      const files = await createFixtureModel(freshDir(), { ...SMALL, gguf: false, huggingFace: { dtype } });
      const model = await loadModel(files.huggingFaceFolder!);
      expect(model.weights.info('tokenEmbedding').storedType).toBe(dtype);
      model.close();
    }
    reference.close();
  });

  it('reads row and column ranges equal to slices of the whole matrix', async () => {
    const model = await loadModel((await createFixtureModel(freshDir(), { ...SMALL, huggingFace: false })).ggufPath!);
    const whole = await model.weights.read('layers.0.feedForward.down');
    const [rows, columns] = model.weights.info('layers.0.feedForward.down').shape as [number, number];
    expect(await model.weights.readRows('layers.0.feedForward.down', 5, 3)).toEqual(
      whole.subarray(5 * columns, 8 * columns),
    );
    const block = await model.weights.readColumns('layers.0.feedForward.down', 64, 32);
    for (let row = 0; row < rows; row++)
      expect(block.subarray(row * 32, row * 32 + 32)).toEqual(whole.subarray(row * columns + 64, row * columns + 96));
    const [left, right] = await model.weights.readColumnRanges('layers.0.feedForward.down', [
      { first: 0, count: 8 },
      { first: 200, count: 56 },
    ]);
    expect(left).toEqual(await model.weights.readColumns('layers.0.feedForward.down', 0, 8));
    expect(right).toEqual(await model.weights.readColumns('layers.0.feedForward.down', 200, 56));
    // every column: the rows as read, in one piece
    expect(await model.weights.readColumns('layers.0.feedForward.down', 0, columns)).toEqual(whole);
    await expect(model.weights.readColumns('layers.0.feedForward.down', 250, 8)).rejects.toThrow(RangeError);
    await expect(model.weights.readColumns('outputNorm', 0, 1)).rejects.toThrow(/needs? a matrix/);
    expect(() => model.weights.info('layers.9.attention.wq')).toThrow(/unknown weight/);
    model.close();
  });

  it('rejects Hugging Face folders with missing or escaping shards, missing tensors and wrong shapes', async () => {
    const files = await createFixtureModel(freshDir(), { ...SMALL, gguf: false, huggingFace: { shardCount: 2 } });
    const folder = files.huggingFaceFolder!;
    const indexPath = join(folder, 'model.safetensors.index.json');
    const index = JSON.parse(readFileSync(indexPath, 'utf8'));
    const original = JSON.stringify(index);
    const expectFormatError = async (field: RegExp) => {
      const error = await loadModel(folder).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(FormatError);
      expect((error as FormatError).field).toMatch(field);
    };
    index.weight_map['model.norm.weight'] = '../outside.safetensors';
    writeFileSync(indexPath, JSON.stringify(index));
    await expectFormatError(/weight_map\["model.norm.weight"\]/);
    index.weight_map['model.norm.weight'] = 'model-00009-of-00009.safetensors';
    writeFileSync(indexPath, JSON.stringify(index));
    await expectFormatError(/weight_map/);
    const withoutNorm = JSON.parse(original);
    delete withoutNorm.weight_map['model.norm.weight'];
    writeFileSync(indexPath, JSON.stringify(withoutNorm));
    await expectFormatError(/model\.norm\.weight/);
    writeFileSync(indexPath, original);
    const configPath = join(folder, 'config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    writeFileSync(configPath, JSON.stringify({ ...config, intermediate_size: 128 }));
    await expectFormatError(/shape/);
    // untied weights need lm_head.weight
    writeFileSync(configPath, JSON.stringify({ ...config, tie_word_embeddings: false }));
    await expectFormatError(/^tensor lm_head\.weight$/);
  });
});
