/**
 * GGUF byte-level BPE tokenizers (`tokenizer.ggml.model = gpt2`, as in Llama 3 GGUF files), run by
 * rebuilding the tokenizer.json they were converted from and handing it to @huggingface/tokenizers:
 * vocabulary from `tokenizer.ggml.tokens`, merges from `tokenizer.ggml.merges`, control and
 * user-defined tokens as added tokens, the pre-tokenizer regex chosen by `tokenizer.ggml.pre`
 * (llama.cpp `llama-vocab.cpp`), ByteLevel pre-tokenizer and decoder, BOS by `add_bos_token`.
 *
 * @packageDocumentation
 */
import { UnsupportedError } from '@fairkv/core';
import type { GgufMetadata } from '../model/gguf-metadata.js';
import { SENTENCEPIECE_TOKEN_TYPES } from './sentencepiece-bpe.js';

/** Llama 3's split regex (tokenizer.json of meta-llama/Meta-Llama-3-8B; llama.cpp `LLAMA_VOCAB_PRE_TYPE_LLAMA3`). */
export const LLAMA3_PRETOKENIZER_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** GPT-2's split regex (llama.cpp `LLAMA_VOCAB_PRE_TYPE_GPT2`). */
export const GPT2_PRETOKENIZER_REGEX =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** `tokenizer.ggml.pre` values fairkv supports, with their regex and whether merges are skipped for whole-vocabulary words. */
export const GGUF_BPE_PRETOKENIZERS: Readonly<Record<string, { regex: string; ignoreMerges: boolean }>> = {
  'llama-bpe': { regex: LLAMA3_PRETOKENIZER_REGEX, ignoreMerges: true },
  'llama-v3': { regex: LLAMA3_PRETOKENIZER_REGEX, ignoreMerges: true },
  llama3: { regex: LLAMA3_PRETOKENIZER_REGEX, ignoreMerges: true },
  'gpt-2': { regex: GPT2_PRETOKENIZER_REGEX, ignoreMerges: false },
  gpt2: { regex: GPT2_PRETOKENIZER_REGEX, ignoreMerges: false },
};

/**
 * Rebuilds a tokenizer.json object (and a tokenizer_config.json object) from the `tokenizer.ggml.*`
 * keys of a `gpt2` GGUF tokenizer.
 * @throws FormatError for inconsistent keys (naming the key), UnsupportedError for an unknown `pre`.
 */
export function byteLevelTokenizerJsonFromGguf(metadata: GgufMetadata): {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
} {
  const file = metadata.header.file;
  const pre = metadata.string('tokenizer.ggml.pre') ?? 'gpt-2';
  const pretokenizer = GGUF_BPE_PRETOKENIZERS[pre];
  if (!pretokenizer) {
    throw new UnsupportedError(
      `${file}: tokenizer.ggml.pre "${pre}" is not supported yet: expected one of ${Object.keys(GGUF_BPE_PRETOKENIZERS).join(', ')}`,
    );
  }
  const tokens = metadata.stringArray('tokenizer.ggml.tokens');
  if (!tokens || tokens.length === 0) metadata.fail('tokenizer.ggml.tokens', 'required: a non-empty array of strings');
  const merges = metadata.stringArray('tokenizer.ggml.merges');
  if (!merges)
    metadata.fail('tokenizer.ggml.merges', 'required for a gpt2 tokenizer: an array of "left right" strings');
  const tokenTypes = metadata.numberArray('tokenizer.ggml.token_type');
  if (tokenTypes && tokenTypes.length !== tokens.length) {
    metadata.fail(
      'tokenizer.ggml.token_type',
      `has ${tokenTypes.length} entries, expected one per token (${tokens.length})`,
    );
  }
  const mergePairs = merges.map((merge, index) => {
    const space = merge.indexOf(' ');
    if (space <= 0 || space === merge.length - 1)
      metadata.fail('tokenizer.ggml.merges', `entry ${index} ${JSON.stringify(merge)} is not "left right"`);
    return [merge.slice(0, space), merge.slice(space + 1)];
  });
  const tokenId = (key: string) => {
    const id = metadata.integer(key);
    if (id !== undefined && (id < 0 || id >= tokens.length))
      metadata.fail(key, `token id ${id} is outside 0..${tokens.length - 1}`);
    return id;
  };
  const bos = tokenId('tokenizer.ggml.bos_token_id');
  const eos = tokenId('tokenizer.ggml.eos_token_id');
  const vocab: Record<string, number> = {};
  const addedTokens: Record<string, unknown>[] = [];
  tokens.forEach((token, id) => {
    if (!Object.hasOwn(vocab, token)) vocab[token] = id;
    const type = tokenTypes?.[id];
    if (type === SENTENCEPIECE_TOKEN_TYPES.control || type === SENTENCEPIECE_TOKEN_TYPES.userDefined) {
      addedTokens.push({
        id,
        content: token,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: type === SENTENCEPIECE_TOKEN_TYPES.userDefined,
        special: type === SENTENCEPIECE_TOKEN_TYPES.control,
      });
    }
  });
  const addBos = (metadata.boolean('tokenizer.ggml.add_bos_token') ?? true) && bos !== undefined;
  const bosToken = bos !== undefined ? tokens[bos]! : undefined;
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: pretokenizer.regex }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: addBos
      ? {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: bosToken, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [
            { SpecialToken: { id: bosToken, type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
            { SpecialToken: { id: bosToken, type_id: 1 } },
            { Sequence: { id: 'B', type_id: 1 } },
          ],
          special_tokens: { [bosToken!]: { id: bosToken, ids: [bos], tokens: [bosToken] } },
        }
      : null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: pretokenizer.ignoreMerges,
      vocab,
      merges: mergePairs,
    },
  };
  const tokenizerConfig: Record<string, unknown> = { clean_up_tokenization_spaces: false };
  if (bosToken !== undefined) tokenizerConfig.bos_token = bosToken;
  if (eos !== undefined) tokenizerConfig.eos_token = tokens[eos];
  return { tokenizerJson, tokenizerConfig };
}
