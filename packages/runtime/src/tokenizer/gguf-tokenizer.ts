/**
 * The tokenizer stored inside a GGUF file (`tokenizer.ggml.*` keys, ggml docs/gguf.md "Tokenizer").
 * `tokenizer.ggml.model = llama` is SentencePiece BPE and runs with llama2.c semantics; `gpt2`
 * (Llama 3) is byte-level BPE, run through @huggingface/tokenizers.
 *
 * @packageDocumentation
 */
import { UnsupportedError } from '@fairkv/core';
import type { GgufMetadata } from '../model/gguf-metadata.js';
import { byteLevelTokenizerJsonFromGguf } from './gguf-byte-level-bpe.js';
import { HuggingFaceTokenizer } from './huggingface-tokenizer.js';
import { SentencePieceBpeTokenizer } from './sentencepiece-bpe.js';
import type { Tokenizer } from './tokenizer.js';

/**
 * Builds the tokenizer a GGUF file describes.
 * @throws FormatError when a tokenizer key has the wrong type, arrays disagree in length, or a special
 *   token id is out of range.
 * @throws UnsupportedError for tokenizer models other than `llama` and `gpt2`, unknown `gpt2` pre-tokenizers, or no tokenizer.
 */
export function tokenizerFromGguf(metadata: GgufMetadata): Tokenizer {
  const model = metadata.string('tokenizer.ggml.model');
  if (model === undefined) {
    throw new UnsupportedError(`${metadata.header.file}: no tokenizer inside (tokenizer.ggml.model is missing)`);
  }
  if (model === 'gpt2') {
    const { tokenizerJson, tokenizerConfig } = byteLevelTokenizerJsonFromGguf(metadata);
    return new HuggingFaceTokenizer(tokenizerJson, tokenizerConfig, metadata.header.file);
  }
  if (model !== 'llama') {
    throw new UnsupportedError(
      `${metadata.header.file}: tokenizer.ggml.model "${model}" is not supported yet: expected "llama" (SentencePiece BPE) or "gpt2" (byte-level BPE)`,
    );
  }
  const tokens = metadata.stringArray('tokenizer.ggml.tokens');
  if (!tokens) throw metadata.fail('tokenizer.ggml.tokens', 'required key is missing');
  if (tokens.length === 0) metadata.fail('tokenizer.ggml.tokens', 'the vocabulary is empty');
  const scores = metadata.numberArray('tokenizer.ggml.scores') ?? new Array<number>(tokens.length).fill(0);
  if (scores.length !== tokens.length) {
    metadata.fail('tokenizer.ggml.scores', `has ${scores.length} entries, expected one per token (${tokens.length})`);
  }
  const tokenTypes = metadata.numberArray('tokenizer.ggml.token_type');
  if (tokenTypes && tokenTypes.length !== tokens.length) {
    metadata.fail(
      'tokenizer.ggml.token_type',
      `has ${tokenTypes.length} entries, expected one per token (${tokens.length})`,
    );
  }
  const tokenId = (key: string) => {
    const id = metadata.integer(key);
    if (id !== undefined && (id < 0 || id >= tokens.length))
      metadata.fail(key, `token id ${id} is outside 0..${tokens.length - 1}`);
    return id;
  };
  return new SentencePieceBpeTokenizer({
    tokens,
    scores,
    ...(tokenTypes ? { tokenTypes } : {}),
    bosTokenId: tokenId('tokenizer.ggml.bos_token_id'),
    eosTokenId: tokenId('tokenizer.ggml.eos_token_id'),
    unknownTokenId: tokenId('tokenizer.ggml.unknown_token_id'),
    addBos: metadata.boolean('tokenizer.ggml.add_bos_token') ?? true,
    addEos: metadata.boolean('tokenizer.ggml.add_eos_token') ?? false,
    addSpacePrefix: metadata.boolean('tokenizer.ggml.add_space_prefix') ?? true,
  });
}
