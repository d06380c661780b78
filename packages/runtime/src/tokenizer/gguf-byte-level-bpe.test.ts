import { UnsupportedError } from '@fairkv/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createByteLevelVocabulary, naiveByteLevelEncode } from '../__fixtures__/byte-level-bpe.js';
import { memoryByteSource } from '../model/byte-source.js';
import { GgufMetadata } from '../model/gguf-metadata.js';
import { parseGgufHeader } from '../model/gguf-reader.js';
import type { GgufValue } from '../model/gguf-value.js';
import { encodeGguf } from '../model/gguf-writer.js';
import { tokenizerFromGguf } from './gguf-tokenizer.js';

const vocabulary = createByteLevelVocabulary();

function tokenizerFor(metadata: [string, GgufValue][]) {
  const header = parseGgufHeader(memoryByteSource(encodeGguf({ version: 3, metadata, tensors: [] }), 'bpe.gguf'));
  return tokenizerFromGguf(new GgufMetadata(header));
}

describe('GGUF byte-level BPE tokenizer (tokenizer.ggml.model = gpt2)', () => {
  const tokenizer = tokenizerFor(vocabulary.metadata);

  it('encodes like a naive GPT-2 style byte-level BPE with the Llama 3 split regex (property)', () => {
    expect(tokenizer.kind).toBe('huggingface');
    expect(tokenizer.bosTokenId).toBe(vocabulary.bos);
    expect(tokenizer.eosTokenId).toBe(vocabulary.eos);
    const alphabet = fc.constantFrom(
      ...[
        'a',
        'e',
        't',
        'h',
        ' ',
        '  ',
        '\n',
        "'",
        's',
        'L',
        '1',
        '2',
        '3',
        '4',
        '.',
        '!',
        'é',
        '日',
        '✓',
        '\t',
        'Once',
        ' the',
        "'ll",
        "'S",
      ],
    );
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 30 }), (pieces) => {
        const text = pieces.join('');
        const ids = tokenizer.encode(text);
        expect(ids).toEqual(naiveByteLevelEncode(vocabulary.tokens, vocabulary.merges, text, vocabulary.bos));
        expect(tokenizer.decode(ids)).toBe(text);
      }),
      { seed: 17, numRuns: 300 },
    );
  });

  it('merges frequent words into single tokens and keeps control tokens out of decoded text', () => {
    const ids = tokenizer.encode(' the park', { addSpecialTokens: false });
    expect(ids.length).toBeLessThan(' the park'.length);
    expect(tokenizer.decode([vocabulary.bos, ...ids, vocabulary.eos])).toBe(' the park');
  });

  it('refuses unknown pre-tokenizers and malformed merges', () => {
    const replace = (key: string, value: GgufValue) =>
      vocabulary.metadata.map(([name, old]) => [name, name === key ? value : old] as [string, GgufValue]);
    expect(() => tokenizerFor(replace('tokenizer.ggml.pre', { type: 'string', value: 'qwen2' }))).toThrow(
      UnsupportedError,
    );
    expect(() =>
      tokenizerFor(replace('tokenizer.ggml.merges', { type: 'array', elementType: 'string', value: ['nospace'] })),
    ).toThrow(/tokenizer\.ggml\.merges/);
  });
});
