import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { naiveLlama2cEncode } from '../__fixtures__/naive-llama2c-encode.js';
import { createFixtureVocabulary } from './fixture-vocabulary.js';
import { SentencePieceBpeTokenizer } from './sentencepiece-bpe.js';

const vocabulary = createFixtureVocabulary().sentencePiece;
const tokenizer = new SentencePieceBpeTokenizer(vocabulary);

describe('SentencePieceBpeTokenizer', () => {
  it('prepends BOS and a dummy-prefix space, and merges by score', () => {
    const ids = tokenizer.encode('the ball');
    expect(ids[0]).toBe(1);
    const pieces = ids.slice(1).map((id) => tokenizer.tokenToPiece(id));
    // '▁the' and '▁ball' are learned merges, so each comes out whole
    expect(pieces).toEqual(['\u2581the', '\u2581ball']);
    expect(tokenizer.encode('the ball', { addSpecialTokens: false })).toEqual(ids.slice(1));
  });

  it('encodes the empty string to BOS only', () => {
    expect(tokenizer.encode('')).toEqual([1]);
    expect(tokenizer.encode('', { addSpecialTokens: false })).toEqual([]);
  });

  it('falls back to UTF-8 byte tokens for characters outside the vocabulary', () => {
    const ids = tokenizer.encode('\u2713', { addSpecialTokens: false });
    expect(ids.map((id) => tokenizer.tokenToPiece(id))).toEqual(['\u2581', '<0xE2>', '<0x9C>', '<0x93>']);
    expect(tokenizer.decode(ids)).toBe('\u2713');
  });

  it('picks the same merges as llama2.c run.c for arbitrary text (property)', () => {
    const alphabet = fc.constantFrom(...'the ball was high, Lily played é✓ 日\n\tOnce'.split(''));
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 40 }), (characters) => {
        const text = characters.join('');
        expect(tokenizer.encode(text)).toEqual(naiveLlama2cEncode(vocabulary.tokens, vocabulary.scores, text, 1));
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  it('decodes what it encodes (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 30 }), (text) => {
        expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
      }),
      { seed: 11, numRuns: 300 },
    );
  });

  it('skips control tokens when decoding unless asked to keep them', () => {
    const ids = [1, ...tokenizer.encode('hi', { addSpecialTokens: false }), 2];
    expect(tokenizer.decode(ids)).toBe('hi');
    expect(tokenizer.decode(ids, { skipSpecialTokens: false })).toBe('<s>hi</s>');
  });

  it('never turns user text into control tokens', () => {
    const ids = tokenizer.encode('<s></s>', { addSpecialTokens: false });
    expect(ids).not.toContain(1);
    expect(ids).not.toContain(2);
    expect(tokenizer.decode(ids)).toBe('<s></s>');
  });

  it('streams without ever showing half a character, and the stream equals the full decode', () => {
    const text = 'a ✓ and 日本 then é';
    const ids = tokenizer.encode(text);
    const decoder = tokenizer.createStreamDecoder();
    const chunks = ids.map((id) => decoder.push(id));
    chunks.push(decoder.flush());
    for (const chunk of chunks) expect(chunk).not.toContain('\uFFFD');
    // the three byte tokens of '✓' produce nothing until the last one
    const check = ids.findIndex((id) => tokenizer.tokenToPiece(id) === '<0xE2>');
    expect(chunks.slice(check, check + 3)).toEqual(['', '', '\u2713']);
    expect(chunks.join('')).toBe(text);
  });

  it('keeps the leading space of a streamed token that follows the prompt (run.c decode)', () => {
    const prompt = tokenizer.encode('the');
    const decoder = tokenizer.createStreamDecoder({ contextTokenIds: prompt });
    const next = tokenizer.encode(' ball', { addSpecialTokens: false }).slice(1);
    expect(next.map((id) => decoder.push(id)).join('')).toBe(' ball');
  });

  it('flush turns an incomplete character into U+FFFD', () => {
    const decoder = tokenizer.createStreamDecoder();
    const firstByte = tokenizer.pieceToToken('<0xE2>')!;
    expect(decoder.push(firstByte)).toBe('');
    expect(decoder.flush()).toBe('\uFFFD');
  });
});
