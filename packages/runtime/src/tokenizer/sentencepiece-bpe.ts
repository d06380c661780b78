/**
 * SentencePiece BPE with llama2.c semantics (karpathy/llama2.c `run.c`, `encode` and `decode`), the
 * tokenizer Llama 1/2 GGUF files carry (`tokenizer.ggml.model = llama`):
 *
 * - spaces become '▁' (U+2581) and a '▁' is prepended to non-empty text (the "dummy prefix");
 * - every code point found in the vocabulary becomes its token, others fall back to their UTF-8
 *   bytes as `<0xXX>` tokens;
 * - then, repeatedly, the adjacent pair whose concatenation is a vocabulary entry with the highest
 *   score is merged (the leftmost pair on ties), until no pair merges;
 * - BOS is prepended when asked.
 *
 * run.c rescans all pairs after every merge (quadratic); this implementation keeps candidate pairs in
 * a heap ordered by (score descending, position ascending) and skips stale ones, which picks the same
 * pair at every step. Control and unknown tokens are never produced from text.
 *
 * @packageDocumentation
 */
import type { DecodeOptions, EncodeOptions, StreamDecoderOptions, Tokenizer, TokenStreamDecoder } from './tokenizer.js';

/** SentencePiece token types as GGUF stores them (`tokenizer.ggml.token_type`, llama.cpp `llama_token_type`). */
export const SENTENCEPIECE_TOKEN_TYPES = {
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;

/** The vocabulary of a SentencePiece BPE tokenizer. */
export interface SentencePieceVocabulary {
  /** Token pieces by id ('▁' stands for a space, `<0xXX>` for a byte). */
  tokens: readonly string[];
  /** Merge priority of each token (higher merges first). */
  scores: ArrayLike<number>;
  /** Token types by id ({@link SENTENCEPIECE_TOKEN_TYPES}); all normal when omitted. */
  tokenTypes?: ArrayLike<number>;
  bosTokenId?: number;
  eosTokenId?: number;
  unknownTokenId?: number;
  /** Prepend BOS when encoding with special tokens (default true). */
  addBos?: boolean;
  /** Append EOS when encoding with special tokens (default false). */
  addEos?: boolean;
  /** Prepend '▁' to the text (default true). */
  addSpacePrefix?: boolean;
}

const SPACE_PIECE = '\u2581';
/** Token pairs whose merge the tokenizer remembers (tens of MB at most; forgotten all at once when full). */
const PAIR_CACHE_LIMIT = 1 << 20;
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/** A min-heap entry: merge `left` with its right neighbour into `token` of `score`. */
interface Candidate {
  score: number;
  left: number;
  rightLength: number;
  leftLength: number;
  token: number;
}

class CandidateHeap {
  private readonly items: Candidate[] = [];
  get size(): number {
    return this.items.length;
  }
  private before(a: Candidate, b: Candidate): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }
  /** Swaps two entries (by hand: a destructuring swap allocates an array on this hot path). */
  private swap(i: number, j: number): void {
    const items = this.items;
    const held = items[i]!;
    items[i] = items[j]!;
    items[j] = held;
  }
  push(item: Candidate): void {
    const items = this.items;
    items.push(item);
    let index = items.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.before(items[index]!, items[parent]!)) break;
      this.swap(index, parent);
      index = parent;
    }
  }
  pop(): Candidate | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      let index = 0;
      for (;;) {
        const left = 2 * index + 1;
        const right = left + 1;
        let best = index;
        if (left < items.length && this.before(items[left]!, items[best]!)) best = left;
        if (right < items.length && this.before(items[right]!, items[best]!)) best = right;
        if (best === index) break;
        this.swap(index, best);
        index = best;
      }
    }
    return top;
  }
}

/** SentencePiece BPE tokenizer with llama2.c encode/decode semantics. */
export class SentencePieceBpeTokenizer implements Tokenizer {
  readonly kind = 'sentencepiece-bpe' as const;
  readonly vocabSize: number;
  readonly bosTokenId: number | undefined;
  readonly eosTokenId: number | undefined;
  private readonly pieceIds = new Map<string, number>();
  /** Merged token of a (left, right) token pair, keyed `left * vocabSize + right`; -1: the pair does not merge. */
  private readonly pairMerges = new Map<number, number>();
  private readonly mergeable: boolean[];
  private readonly byteTokens: (number | undefined)[] = new Array(256);
  private readonly tokenBytes: (Uint8Array | undefined)[];
  private readonly control: boolean[];
  private readonly encoder = new TextEncoder();

  constructor(private readonly vocabulary: SentencePieceVocabulary) {
    const { tokens } = vocabulary;
    this.vocabSize = tokens.length;
    this.bosTokenId = vocabulary.bosTokenId;
    this.eosTokenId = vocabulary.eosTokenId;
    const types = vocabulary.tokenTypes;
    this.mergeable = new Array(tokens.length);
    this.control = new Array(tokens.length);
    this.tokenBytes = new Array(tokens.length);
    for (let id = 0; id < tokens.length; id++) {
      const piece = tokens[id]!;
      const type = types?.[id] ?? SENTENCEPIECE_TOKEN_TYPES.normal;
      const special = type === SENTENCEPIECE_TOKEN_TYPES.control || type === SENTENCEPIECE_TOKEN_TYPES.unknown;
      this.control[id] = special || id === vocabulary.bosTokenId || id === vocabulary.eosTokenId;
      this.mergeable[id] = !this.control[id];
      if (!this.pieceIds.has(piece)) this.pieceIds.set(piece, id);
      if (piece.length === 6 && piece.startsWith('<0x')) {
        const byte = BYTE_PIECE.exec(piece);
        if (byte !== null && (types === undefined || type === SENTENCEPIECE_TOKEN_TYPES.byte)) {
          const value = Number.parseInt(byte[1]!, 16);
          this.byteTokens[value] ??= id;
          this.tokenBytes[id] = Uint8Array.of(value);
        }
      }
    }
  }

  private lookup(piece: string): number | undefined {
    const id = this.pieceIds.get(piece);
    return id !== undefined && this.mergeable[id] ? id : undefined;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const addSpecial = options.addSpecialTokens ?? true;
    const output: number[] = [];
    if (addSpecial && (this.vocabulary.addBos ?? true) && this.bosTokenId !== undefined) output.push(this.bosTokenId);
    if (text.length > 0) {
      const normalised =
        ((this.vocabulary.addSpacePrefix ?? true) ? SPACE_PIECE : '') + text.replaceAll(' ', SPACE_PIECE);
      output.push(...this.mergeSymbols(this.initialSymbols(normalised)));
    }
    if (addSpecial && this.vocabulary.addEos && this.eosTokenId !== undefined) output.push(this.eosTokenId);
    return output;
  }

  /** One symbol per code point, or its UTF-8 bytes as byte tokens when the code point is not in the vocabulary. */
  private initialSymbols(text: string): number[] {
    const symbols: number[] = [];
    for (const character of text) {
      const id = this.lookup(character);
      if (id !== undefined) {
        symbols.push(id);
        continue;
      }
      for (const byte of this.encoder.encode(character)) {
        const byteId = this.byteTokens[byte] ?? this.vocabulary.unknownTokenId;
        if (byteId !== undefined) symbols.push(byteId);
      }
    }
    return symbols;
  }

  /** The mergeable token spelling `leftId` then `rightId`, or -1 (remembered per pair: text repeats pairs). */
  private pairMerge(leftId: number, rightId: number): number {
    const key = leftId * this.vocabSize + rightId;
    const known = this.pairMerges.get(key);
    if (known !== undefined) return known;
    const { tokens } = this.vocabulary;
    const merged = this.lookup(tokens[leftId]! + tokens[rightId]!) ?? -1;
    if (this.pairMerges.size >= PAIR_CACHE_LIMIT) this.pairMerges.clear();
    this.pairMerges.set(key, merged);
    return merged;
  }

  private mergeSymbols(initial: number[]): number[] {
    const count = initial.length;
    const token = Int32Array.from(initial);
    const pieceLength = new Int32Array(count).fill(1); // initial symbols this one spans (a version stamp)
    const next = new Int32Array(count);
    const previous = new Int32Array(count);
    for (let index = 0; index < count; index++) {
      next[index] = index + 1 < count ? index + 1 : -1;
      previous[index] = index - 1;
    }
    const heap = new CandidateHeap();
    const consider = (left: number) => {
      const right = next[left]!;
      if (left < 0 || right < 0) return;
      const merged = this.pairMerge(token[left]!, token[right]!);
      if (merged < 0) return;
      const score = Number(this.vocabulary.scores[merged] ?? 0);
      heap.push({ score, left, leftLength: pieceLength[left]!, rightLength: pieceLength[right]!, token: merged });
    };
    for (let index = 0; index + 1 < count; index++) consider(index);
    while (heap.size > 0) {
      const candidate = heap.pop()!;
      const { left } = candidate;
      const right = next[left]!;
      // stale: the left symbol was merged away or changed, or its right neighbour changed
      if (pieceLength[left] !== candidate.leftLength || right < 0 || pieceLength[right] !== candidate.rightLength)
        continue;
      token[left] = candidate.token;
      pieceLength[left] = candidate.leftLength + candidate.rightLength;
      pieceLength[right] = 0;
      next[left] = next[right]!;
      if (next[left]! >= 0) previous[next[left]!] = left;
      if (previous[left]! >= 0) consider(previous[left]!);
      consider(left);
    }
    const output: number[] = [];
    for (let index = count > 0 ? 0 : -1; index >= 0; index = next[index]!) output.push(token[index]!);
    return output;
  }

  /** The bytes a token stands for (empty for control tokens), encoded on first use. */
  private bytesOf(tokenId: number): Uint8Array {
    const cached = this.tokenBytes[tokenId];
    if (cached) return cached;
    // control and unknown tokens stand for no text
    const bytes = this.control[tokenId]
      ? new Uint8Array(0)
      : this.encoder.encode((this.vocabulary.tokens[tokenId] ?? '').replaceAll(SPACE_PIECE, ' '));
    this.tokenBytes[tokenId] = bytes;
    return bytes;
  }

  decode(tokenIds: readonly number[], options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecialTokens ?? true;
    const decoder = new TextDecoder('utf-8');
    let text = '';
    let started = false;
    for (const id of tokenIds) {
      if (this.isControl(id)) {
        if (!skipSpecial) text += this.vocabulary.tokens[id] ?? '';
        continue;
      }
      let chunk = decoder.decode(this.bytesOf(id), { stream: true });
      if (!started && chunk.length > 0) {
        // sentencepiece drops the dummy prefix of the first piece
        if ((this.vocabulary.addSpacePrefix ?? true) && chunk.startsWith(' ')) chunk = chunk.slice(1);
        started = true;
      }
      text += chunk;
    }
    return text + decoder.decode();
  }

  /** Whether a token is a control (BOS, EOS, ...) or out of range. */
  private isControl(tokenId: number): boolean {
    return !Number.isInteger(tokenId) || tokenId < 0 || tokenId >= this.vocabSize || this.control[tokenId] === true;
  }

  /**
   * A streaming decoder. As in run.c's `decode`, a piece that directly follows BOS loses its leading
   * space; the first piece of the stream follows the last context token.
   */
  createStreamDecoder(options: StreamDecoderOptions = {}): TokenStreamDecoder {
    const context = options.contextTokenIds;
    let previous = context && context.length > 0 ? context[context.length - 1] : undefined;
    let decoder = new TextDecoder('utf-8');
    return {
      push: (tokenId: number) => {
        const afterBos = previous !== undefined && previous === this.bosTokenId;
        previous = tokenId;
        if (this.isControl(tokenId)) return '';
        let chunk = decoder.decode(this.bytesOf(tokenId), { stream: true });
        if (afterBos && (this.vocabulary.addSpacePrefix ?? true) && chunk.startsWith(' ')) chunk = chunk.slice(1);
        return chunk;
      },
      flush: () => {
        const rest = decoder.decode();
        decoder = new TextDecoder('utf-8');
        return rest;
      },
    };
  }

  tokenToPiece(tokenId: number): string | undefined {
    return this.vocabulary.tokens[tokenId];
  }

  pieceToToken(piece: string): number | undefined {
    return this.pieceIds.get(piece);
  }
}
