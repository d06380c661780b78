/**
 * Hugging Face `tokenizer.json` tokenizers through `@huggingface/tokenizers` (tokenizers.js, pure
 * JavaScript, works offline from a local file), behind the runtime's {@link Tokenizer} interface.
 *
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { FormatError } from '@fairkv/core';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { DecodeOptions, EncodeOptions, StreamDecoderOptions, Tokenizer, TokenStreamDecoder } from './tokenizer.js';

/** Special-token names tokenizer_config.json uses, as plain strings or `{content}` objects. */
function specialTokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/** A tokenizer.json tokenizer. */
export class HuggingFaceTokenizer implements Tokenizer {
  readonly kind = 'huggingface' as const;
  readonly vocabSize: number;
  readonly bosTokenId: number | undefined;
  readonly eosTokenId: number | undefined;

  /**
   * @param tokenizerJson - the parsed tokenizer.json
   * @param tokenizerConfig - the parsed tokenizer_config.json (optional: `bos_token`, `eos_token`)
   * @param source - file name for error messages
   */
  constructor(tokenizerJson: unknown, tokenizerConfig: Record<string, unknown> = {}, source = 'tokenizer.json') {
    if (typeof tokenizerJson !== 'object' || tokenizerJson === null || Array.isArray(tokenizerJson)) {
      throw new FormatError(`${source}: expected a JSON object`, { file: source, field: '$', offset: 0 });
    }
    let tokenizer: HfTokenizer;
    try {
      tokenizer = new HfTokenizer(tokenizerJson, tokenizerConfig);
    } catch (error) {
      throw new FormatError(`${source}: not a tokenizer tokenizers.js can load (${(error as Error).message})`, {
        file: source,
        field: '$.model',
        offset: 0,
      });
    }
    this.tokenizer = tokenizer;
    const vocabulary = tokenizer.get_vocab(true);
    let largest = -1;
    for (const id of vocabulary.values()) largest = Math.max(largest, id);
    this.vocabSize = largest + 1;
    const lookup = (name: string) => {
      const content = specialTokenContent(tokenizerConfig[name]);
      return content === undefined ? undefined : tokenizer.token_to_id(content);
    };
    this.bosTokenId = lookup('bos_token') ?? this.firstSpecial(['<s>', '<|begin_of_text|>', '<bos>']);
    this.eosTokenId = lookup('eos_token') ?? this.firstSpecial(['</s>', '<|end_of_text|>', '<|eot_id|>', '<eos>']);
  }

  private readonly tokenizer: HfTokenizer;

  private firstSpecial(candidates: readonly string[]): number | undefined {
    for (const candidate of candidates) {
      const id = this.tokenizer.token_to_id(candidate);
      if (id !== undefined) return id;
    }
    return undefined;
  }

  /** Loads `tokenizer.json` (and, if given, `tokenizer_config.json`) from disk. */
  static fromFiles(tokenizerPath: string, configPath?: string): HuggingFaceTokenizer {
    const json = parseJsonFile(tokenizerPath);
    const config = configPath ? (parseJsonFile(configPath) as Record<string, unknown>) : {};
    return new HuggingFaceTokenizer(json, config, tokenizerPath);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(tokenIds: readonly number[], options: DecodeOptions = {}): string {
    return this.tokenizer.decode([...tokenIds], { skip_special_tokens: options.skipSpecialTokens ?? true });
  }

  /**
   * Streams by decoding a sliding window and emitting only the new suffix (the method of
   * text-generation-inference's `decode_token`): text is held back while it ends in U+FFFD, the mark
   * of an incomplete byte sequence.
   */
  createStreamDecoder(options: StreamDecoderOptions = {}): TokenStreamDecoder {
    const context = options.contextTokenIds ?? [];
    let tokens: number[] = context.slice(-6);
    let prefixOffset = 0;
    let readOffset = tokens.length;
    const decodeRange = (start: number, end: number) => this.decode(tokens.slice(start, end));
    return {
      push: (tokenId: number) => {
        tokens.push(tokenId);
        const prefixText = decodeRange(prefixOffset, readOffset);
        const newText = decodeRange(prefixOffset, tokens.length);
        if (newText.length > prefixText.length && !newText.endsWith('\uFFFD')) {
          const delta = newText.slice(prefixText.length);
          prefixOffset = readOffset;
          readOffset = tokens.length;
          if (prefixOffset > 64) {
            tokens = tokens.slice(prefixOffset);
            readOffset -= prefixOffset;
            prefixOffset = 0;
          }
          return delta;
        }
        return '';
      },
      flush: () => {
        const prefixText = decodeRange(prefixOffset, readOffset);
        const rest = decodeRange(prefixOffset, tokens.length).slice(prefixText.length);
        tokens = [];
        prefixOffset = 0;
        readOffset = 0;
        return rest;
      },
    };
  }

  tokenToPiece(tokenId: number): string | undefined {
    return this.tokenizer.id_to_token(tokenId);
  }

  pieceToToken(piece: string): number | undefined {
    return this.tokenizer.token_to_id(piece);
  }
}

function parseJsonFile(path: string): unknown {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new FormatError(`${path}: not valid JSON (${(error as Error).message})`, {
      file: path,
      field: '$',
      offset: 0,
    });
  }
}
