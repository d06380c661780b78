import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '@fairkv/core';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createFixtureVocabulary } from './fixture-vocabulary.js';
import { HuggingFaceTokenizer } from './huggingface-tokenizer.js';
import { SentencePieceBpeTokenizer } from './sentencepiece-bpe.js';

const vocabulary = createFixtureVocabulary();

describe('HuggingFaceTokenizer', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('loads tokenizer.json from disk and encodes without touching the network', () => {
    const fetch = vi.fn(() => {
      throw new Error('network access');
    });
    vi.stubGlobal('fetch', fetch);
    const dir = mkdtempSync(join(tmpdir(), 'fairkv-tokenizer-'));
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(vocabulary.tokenizerJson));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(vocabulary.tokenizerConfig));
    const tokenizer = HuggingFaceTokenizer.fromFiles(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
    expect(tokenizer.decode(tokenizer.encode('Once upon a time'))).toBe('Once upon a time');
    expect(fetch).not.toHaveBeenCalled();
    expect(tokenizer.bosTokenId).toBe(1);
    expect(tokenizer.eosTokenId).toBe(2);
    expect(tokenizer.vocabSize).toBe(vocabulary.sentencePiece.tokens.length);
  });

  it('encodes exactly like the SentencePiece BPE of the same vocabulary (property)', () => {
    const huggingFace = new HuggingFaceTokenizer(vocabulary.tokenizerJson, vocabulary.tokenizerConfig);
    const sentencePiece = new SentencePieceBpeTokenizer(vocabulary.sentencePiece);
    const alphabet = fc.constantFrom(...'the ball was high, Lily played é✓ 日Once'.split(''));
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 40 }), (characters) => {
        const text = characters.join('');
        const ids = huggingFace.encode(text);
        expect(ids).toEqual(sentencePiece.encode(text));
        expect(huggingFace.decode(ids)).toBe(sentencePiece.decode(ids));
      }),
      { seed: 3, numRuns: 200 },
    );
  });

  it('streams split characters whole and matches the full decode', () => {
    const tokenizer = new HuggingFaceTokenizer(vocabulary.tokenizerJson, vocabulary.tokenizerConfig);
    const ids = tokenizer.encode('Once upon ✓ a time 日');
    const prompt = ids.slice(0, 3);
    const decoder = tokenizer.createStreamDecoder({ contextTokenIds: prompt });
    const chunks = ids.slice(3).map((id) => decoder.push(id));
    chunks.push(decoder.flush());
    for (const chunk of chunks) expect(chunk).not.toContain('\uFFFD');
    expect(tokenizer.decode(prompt) + chunks.join('')).toBe('Once upon ✓ a time 日');
    // the three byte tokens of '✓' yield nothing until the character is complete
    const check = ids.indexOf(tokenizer.pieceToToken('<0xE2>')!) - 3;
    expect(chunks.slice(check, check + 3)).toEqual(['', '', '✓']);
  });

  it('rejects a tokenizer.json that is not an object with a FormatError', () => {
    expect(() => new HuggingFaceTokenizer([1, 2], {}, 'bad.json')).toThrow(FormatError);
    const dir = mkdtempSync(join(tmpdir(), 'fairkv-tokenizer-'));
    writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
    expect(() => HuggingFaceTokenizer.fromFiles(join(dir, 'tokenizer.json'))).toThrow(FormatError);
  });
});
