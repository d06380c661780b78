import { getModelPreset } from '@fairkv/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { naiveLlama2cEncode } from '../__fixtures__/naive-llama2c-encode.js';
import { ReferenceLlama } from '../__fixtures__/reference-llama.js';
import {
  hasStories260k,
  STORIES_260K_GOLDEN,
  STORIES_260K_PATH,
  STORIES_260K_SKIP_MESSAGE,
} from '../__fixtures__/shared.js';
import { memoryByteSource } from './byte-source.js';
import { GgufFile } from './gguf-file.js';
import { GgufMetadata } from './gguf-metadata.js';
import { encodeGguf } from './gguf-writer.js';
import { readKvHeadWeights } from './kv-head-slice.js';
import { loadGgufModelFromFile } from './load-gguf-model.js';
import { loadModel } from './load-model.js';
import type { LoadedModel } from './loaded-model.js';

if (!hasStories260k) console.warn(STORIES_260K_SKIP_MESSAGE);

describe.skipIf(!hasStories260k)('stories260K (../shared/models/stories260K.gguf)', () => {
  let model: LoadedModel;
  beforeAll(async () => {
    model = await loadModel(STORIES_260K_PATH);
    return () => model.close();
  });

  it('is GGUF version 1 and its config matches the core preset stories260k', () => {
    expect(model.format).toBe('gguf');
    const file = GgufFile.open(STORIES_260K_PATH);
    expect(file.version).toBe(1);
    expect(file.header.alignment).toBe(32);
    file.close();
    expect(model.config).toEqual({ ...getModelPreset('stories260k'), name: 'tinyllamas-stories-260k' });
    expect(model.config.ropeLayout).toBe('adjacent');
    // output.weight is stored, but it is byte-identical to the embedding
    expect(model.config.tieWordEmbeddings).toBe(true);
    expect(model.weights.info('output')).toMatchObject({ storedName: 'token_embd.weight', tiedTo: 'tokenEmbedding' });
    expect(model.randomWeights).toBe(false);
  });

  it('exposes every weight under its canonical name in [out, in] layout', () => {
    expect(model.weights.names).toHaveLength(1 + 5 * 9 + 2);
    expect(model.weights.info('layers.4.attention.wk')).toMatchObject({
      shape: [32, 64],
      storedName: 'blk.4.attn_k.weight',
      storedType: 'f32',
    });
    expect(model.weights.info('layers.0.feedForward.down').shape).toEqual([64, 172]);
    expect(model.weights.info('tokenEmbedding').shape).toEqual([512, 64]);
  });

  it('encodes "Once upon a time" as llama2.c does', () => {
    const ids = model.tokenizer.encode('Once upon a time');
    // independent check: look the pieces up in the vocabulary, and run a direct port of run.c encode()
    const file = GgufFile.open(STORIES_260K_PATH);
    const metadata = new GgufMetadata(file.header);
    const tokens = metadata.stringArray('tokenizer.ggml.tokens')!;
    const scores = metadata.numberArray('tokenizer.ggml.scores')!;
    file.close();
    const expected = [
      1,
      ...['\u2581Once', '\u2581upon', '\u2581a', '\u2581time'].map((piece) => tokens.indexOf(piece)),
    ];
    expect(expected).toEqual([1, 403, 407, 261, 378]);
    expect(ids).toEqual(expected);
    expect(naiveLlama2cEncode(tokens, scores, 'Once upon a time', 1)).toEqual(expected);
    expect(model.tokenizer.decode(ids)).toBe('Once upon a time');
    const text = 'Lily saw a big, red ball! Ünïcode ✓ falls back to bytes.';
    expect(model.tokenizer.encode(text)).toEqual(naiveLlama2cEncode(tokens, scores, text, 1));
    expect(model.tokenizer.decode(model.tokenizer.encode(text))).toBe(text);
  });

  it('greedy decoding with adjacent-pair RoPE gives the golden text (and half-split does not)', async () => {
    const prompt = model.tokenizer.encode('Once upon a time');
    const goldenLength = STORIES_260K_GOLDEN.length;
    const reachedGolden = (tokens: number[]) => model.tokenizer.decode(tokens).length >= goldenLength;
    const reference = await ReferenceLlama.load(model);
    const generated = reference.greedy(prompt, 120, model.tokenizer.eosTokenId, reachedGolden);
    const text = model.tokenizer.decode(generated);
    expect(text.slice(0, goldenLength)).toBe(STORIES_260K_GOLDEN);

    const wrong = await ReferenceLlama.load(model, 'half-split');
    const wrongText = model.tokenizer.decode(wrong.greedy(prompt, 120, model.tokenizer.eosTokenId, reachedGolden));
    expect(wrongText.slice(0, goldenLength)).not.toBe(STORIES_260K_GOLDEN);
  });

  it('streams the golden text token by token exactly like the full decode', async () => {
    const prompt = model.tokenizer.encode('Once upon a time');
    const reference = await ReferenceLlama.load(model);
    const generated = reference.greedy(prompt, 30, model.tokenizer.eosTokenId);
    const decoder = model.tokenizer.createStreamDecoder({ contextTokenIds: prompt });
    const streamed =
      generated
        .slice(prompt.length)
        .map((id) => decoder.push(id))
        .join('') + decoder.flush();
    expect(`Once upon a time${streamed}`).toBe(model.tokenizer.decode(generated));
  });

  it('reads one kv head slice exactly as the matching rows and columns of the full matrices', async () => {
    const slice = await readKvHeadWeights(model.weights, model.config, 2, 3);
    const wq = await model.weights.read('layers.2.attention.wq');
    const wk = await model.weights.read('layers.2.attention.wk');
    const wo = await model.weights.read('layers.2.attention.wo');
    // kv head 3 of 4 serves query heads 6 and 7: rows 48..63 of wq, rows 24..31 of wk, columns 48..63 of wo
    expect(slice.wq).toEqual(wq.subarray(48 * 64, 64 * 64));
    expect(slice.wk).toEqual(wk.subarray(24 * 64, 32 * 64));
    for (let row = 0; row < 64; row++)
      expect(slice.wo.subarray(row * 16, row * 16 + 16)).toEqual(wo.subarray(row * 64 + 48, row * 64 + 64));
  });

  it('loads identically after rewriting it as GGUF version 2 and 3', async () => {
    const original = GgufFile.open(STORIES_260K_PATH);
    const metadata = [...original.metadata.values()].map((entry) => [entry.key, entry.value] as const);
    const tensors = await Promise.all(
      original.tensorNames().map(async (name) => {
        const tensor = original.tensor(name)!;
        return { name, shape: tensor.shape, type: 'f32' as const, data: await tensor.read() };
      }),
    );
    original.close();
    for (const version of [2, 3] as const) {
      const rewritten = await loadGgufModelFromFile(
        GgufFile.fromSource(memoryByteSource(encodeGguf({ version, metadata, tensors }))),
      );
      expect(rewritten.config).toEqual(model.config);
      expect(rewritten.tokenizer.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
      expect(await rewritten.weights.read('layers.3.feedForward.up')).toEqual(
        await model.weights.read('layers.3.feedForward.up'),
      );
    }
  });
});
