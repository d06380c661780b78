/**
 * The one tokenizer interface the runtime uses, whatever the model format: SentencePiece BPE read
 * from GGUF, or a Hugging Face tokenizer.json.
 *
 * @packageDocumentation
 */

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /**
   * Add the special tokens the tokenizer is configured to add (BOS for Llama; EOS where the model
   * asks for it). Default true.
   */
  addSpecialTokens?: boolean;
}

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Leave out control tokens such as BOS and EOS. Default true. */
  skipSpecialTokens?: boolean;
}

/** Options of {@link Tokenizer.createStreamDecoder}. */
export interface StreamDecoderOptions {
  /**
   * Tokens already shown (usually the prompt): they give the first streamed token its context, so a
   * leading space is kept or dropped exactly as a full decode would.
   */
  contextTokenIds?: readonly number[];
}

/**
 * Turns generated tokens into text as they arrive. Bytes of a character split over several tokens
 * (byte-fallback tokens `<0xE2>` `<0x9C>` `<0x93>`) are held back until the character is complete,
 * so a stream never shows a broken character.
 */
export interface TokenStreamDecoder {
  /** Adds one token and returns the text that became complete (possibly empty). */
  push(tokenId: number): string;
  /** Returns what is still held back (an incomplete character becomes U+FFFD) and resets. */
  flush(): string;
}

/** Text to token ids and back. */
export interface Tokenizer {
  /** Which implementation: `sentencepiece-bpe` (GGUF, llama2.c semantics) or `huggingface` (tokenizer.json). */
  readonly kind: 'sentencepiece-bpe' | 'huggingface';
  /** Number of token ids. */
  readonly vocabSize: number;
  /** Beginning-of-sequence token, if the tokenizer has one. */
  readonly bosTokenId: number | undefined;
  /** End-of-sequence token, if the tokenizer has one (generation stops there). */
  readonly eosTokenId: number | undefined;
  /** Encodes text to token ids. */
  encode(text: string, options?: EncodeOptions): number[];
  /** Decodes token ids to text. */
  decode(tokenIds: readonly number[], options?: DecodeOptions): string;
  /** A decoder for tokens that arrive one at a time. */
  createStreamDecoder(options?: StreamDecoderOptions): TokenStreamDecoder;
  /** The vocabulary entry of a token id, or undefined when out of range. */
  tokenToPiece(tokenId: number): string | undefined;
  /** The token id of a vocabulary entry, or undefined. */
  pieceToToken(piece: string): number | undefined;
}
