import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, FormatError, UnsupportedError } from '@fairkv/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryByteSource } from './byte-source.js';
import { createFixtureModel, type FixtureModelFiles } from './fixture-model.js';
import { GgufFile } from './gguf-file.js';
import { parseGgufHeader } from './gguf-reader.js';
import type { GgufValue } from './gguf-value.js';
import { encodeGguf } from './gguf-writer.js';
import { llama3RopeFactors } from './llama3-rope-factors.js';
import { loadGgufModelFromFile } from './load-gguf-model.js';
import { loadModel } from './load-model.js';

const TINY = { layerCount: 1, hiddenSize: 64, queryHeadCount: 1, kvHeadCount: 1, headDim: 64, ffnSize: 64 } as const;

/** The fixture GGUF re-encoded with some metadata replaced (or removed with `undefined`) and extra tensors. */
async function rewrite(
  path: string,
  replace: Record<string, GgufValue | undefined>,
  extraTensors: string[] = [],
  extraData: ArrayLike<number> = new Float32Array(32),
): Promise<Uint8Array> {
  const file = GgufFile.open(path);
  const metadata = [...file.metadata.values()]
    .filter((entry) => !(entry.key in replace) || replace[entry.key] !== undefined)
    .map((entry) => [entry.key, replace[entry.key] ?? entry.value] as const);
  for (const [key, value] of Object.entries(replace)) if (value && !file.metadata.has(key)) metadata.push([key, value]);
  const tensors = await Promise.all(
    file.tensorNames().map(async (name) => ({
      name,
      shape: file.tensor(name)!.shape,
      type: 'f32' as const,
      data: await file.tensor(name)!.read(),
    })),
  );
  for (const name of extraTensors)
    tensors.push({ name, shape: [extraData.length], type: 'f32', data: Float32Array.from(extraData) });
  file.close();
  return encodeGguf({ version: 3, metadata, tensors });
}

async function loadBytes(bytes: Uint8Array) {
  return loadGgufModelFromFile(GgufFile.fromSource(memoryByteSource(bytes, 'edited.gguf')));
}

describe('loadModel errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fairkv-load-'));
  let files: FixtureModelFiles;
  beforeAll(async () => {
    files = await createFixtureModel(dir, TINY);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a file that is neither GGUF nor a folder', async () => {
    const path = join(dir, 'notes.txt');
    writeFileSync(path, 'hello, world');
    await expect(loadModel(path)).rejects.toMatchObject({ name: 'FormatError', file: path, field: 'magic', offset: 0 });
  });

  it('names the file, the tensor and the offset of a truncated GGUF on disk', async () => {
    const path = join(dir, 'truncated.gguf');
    const bytes = readFileSync(files.ggufPath!);
    writeFileSync(path, bytes.subarray(0, bytes.length - 100));
    const error = await loadModel(path).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FormatError);
    expect(error).toMatchObject({ file: path, field: 'tensor output_norm.weight data' });
    expect((error as FormatError).message).toContain(path);
  });

  it('gives a FormatError when the file shrinks after it was opened', async () => {
    const path = join(dir, 'shrinking.gguf');
    writeFileSync(path, readFileSync(files.ggufPath!));
    const model = await loadModel(path);
    const header = parseGgufHeader(memoryByteSource(new Uint8Array(readFileSync(path))));
    truncateSync(path, header.dataStart + 10);
    await expect(model.weights.read('outputNorm')).rejects.toThrow(/unexpected end of file/);
    model.close();
    await expect(model.weights.read('outputNorm')).rejects.toThrow(FormatError);
  });

  it('bounds the layer count by the tensors in the file before listing them', async () => {
    const start = performance.now();
    const error = await loadBytes(
      await rewrite(files.ggufPath!, { 'llama.block_count': { type: 'uint32', value: 2 ** 26 } }),
    ).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ name: 'FormatError', field: 'tensor blk.1.attn_norm.weight' });
    expect((error as Error).message).toMatch(/block_count says 67108864 layers/);
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('names the metadata key of a wrong or inconsistent hyperparameter', async () => {
    const cases: [Record<string, GgufValue | undefined>, string][] = [
      [{ 'tokenizer.ggml.model': { type: 'string', value: 'gpt2' } }, 'tokenizer.ggml.merges'],
      [{ 'llama.embedding_length': { type: 'string', value: '64' } }, 'llama.embedding_length'],
      [{ 'llama.attention.head_count_kv': { type: 'uint32', value: 3 } }, 'llama.attention.head_count_kv'],
      [{ 'llama.context_length': undefined }, 'llama.context_length'],
      [{ 'llama.feed_forward_length': { type: 'uint32', value: 96 } }, 'tensor blk.0.ffn_gate.weight shape'],
      [{ 'tokenizer.ggml.bos_token_id': { type: 'uint32', value: 5000 } }, 'tokenizer.ggml.bos_token_id'],
      [{ 'tokenizer.ggml.scores': { type: 'array', elementType: 'float32', value: [1, 2] } }, 'tokenizer.ggml.scores'],
      [{ 'llama.vocab_size': { type: 'uint32', value: 7 } }, 'llama.vocab_size'],
    ];
    for (const [replace, field] of cases) {
      const error = await loadBytes(await rewrite(files.ggufPath!, replace)).catch((caught: unknown) => caught);
      expect(error, field).toBeInstanceOf(FormatError);
      expect((error as FormatError).field, field).toBe(field);
      expect((error as FormatError).file).toBe('edited.gguf');
    }
  });

  it('says UnsupportedError for valid files of what fairkv does not run yet', async () => {
    const cases: [Record<string, GgufValue | undefined>, string[], RegExp][] = [
      [{ 'general.architecture': { type: 'string', value: 'gpt2' } }, [], /architecture "gpt2"/],
      [{ 'tokenizer.ggml.model': { type: 'string', value: 'bert' } }, [], /tokenizer.ggml.model "bert"/],
      [
        {
          'tokenizer.ggml.model': { type: 'string', value: 'gpt2' },
          'tokenizer.ggml.pre': { type: 'string', value: 'qwen2' },
        },
        [],
        /tokenizer.ggml.pre "qwen2"/,
      ],
      [{ 'llama.rope.dimension_count': { type: 'uint32', value: 32 } }, [], /partial rotary/],
      [{ 'llama.rope.scaling.type': { type: 'string', value: 'yarn' } }, [], /yarn/],
      [{}, ['rope_freqs.weight'], /rope_freqs.weight holds/],
    ];
    for (const [replace, extra, message] of cases) {
      const error = await loadBytes(await rewrite(files.ggufPath!, replace, extra)).catch((caught: unknown) => caught);
      expect(error, String(message)).toBeInstanceOf(UnsupportedError);
      expect((error as Error).message).toMatch(message);
    }
  });

  it('recovers Llama 3.1 RoPE scaling from rope_freqs.weight', async () => {
    const scaling = {
      type: 'llama3',
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    } as const;
    const factors = llama3RopeFactors(scaling, 10000, 64);
    // this head dimension and base cover all three regimes: unscaled, scaled and interpolated pairs
    expect(factors[0]).toBe(1);
    expect(factors[31]).toBe(8);
    expect(factors.some((value) => value > 1 && value < 8)).toBe(true);
    const model = await loadBytes(await rewrite(files.ggufPath!, {}, ['rope_freqs.weight'], factors));
    expect(model.config.ropeScaling).toEqual(scaling);
  });

  it('reads linear RoPE scaling from GGUF', async () => {
    const model = await loadBytes(
      await rewrite(files.ggufPath!, {
        'llama.rope.scaling.type': { type: 'string', value: 'linear' },
        'llama.rope.scaling.factor': { type: 'float32', value: 4 },
      }),
    );
    expect(model.config.ropeScaling).toEqual({ type: 'linear', factor: 4 });
  });

  it('rejects Hugging Face folders without weights, with pickles only, or with an invalid config', async () => {
    const folder = (await createFixtureModel(join(dir, 'hf-broken'), { ...TINY, gguf: false })).huggingFaceFolder!;
    const weights = readFileSync(join(folder, 'model.safetensors'));
    rmSync(join(folder, 'model.safetensors'));
    writeFileSync(join(folder, 'pytorch_model.bin'), 'pickle bytes that must never be executed');
    await expect(loadModel(folder)).rejects.toMatchObject({ name: 'FormatError', field: 'model.safetensors' });
    writeFileSync(join(folder, 'model.safetensors'), weights);
    expect((await loadModel(folder)).config.layerCount).toBe(1);
    const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
    writeFileSync(join(folder, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 0 }));
    await expect(loadModel(folder)).rejects.toThrow(ConfigError);
    writeFileSync(join(folder, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 2 ** 26 }));
    await expect(loadModel(folder)).rejects.toMatchObject({
      name: 'FormatError',
      field: 'tensor model.layers.1.input_layernorm.weight',
    });
    writeFileSync(join(folder, 'config.json'), '{ not json');
    await expect(loadModel(folder)).rejects.toMatchObject({ name: 'FormatError', field: '$' });
  });
});
