/**
 * Tokenizers behind one interface: SentencePiece BPE from GGUF (llama2.c semantics) and Hugging Face
 * tokenizer.json (through @huggingface/tokenizers).
 *
 * @packageDocumentation
 */

export { createFixtureVocabulary, FIXTURE_TOKENIZER_CORPUS, type FixtureVocabulary } from './fixture-vocabulary.js';
export {
  byteLevelTokenizerJsonFromGguf,
  GGUF_BPE_PRETOKENIZERS,
  GPT2_PRETOKENIZER_REGEX,
  LLAMA3_PRETOKENIZER_REGEX,
} from './gguf-byte-level-bpe.js';
export { tokenizerFromGguf } from './gguf-tokenizer.js';
export { HuggingFaceTokenizer } from './huggingface-tokenizer.js';
export {
  SENTENCEPIECE_TOKEN_TYPES,
  SentencePieceBpeTokenizer,
  type SentencePieceVocabulary,
} from './sentencepiece-bpe.js';
export type { DecodeOptions, EncodeOptions, StreamDecoderOptions, Tokenizer, TokenStreamDecoder } from './tokenizer.js';
