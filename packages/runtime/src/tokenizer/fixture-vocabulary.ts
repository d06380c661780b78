/**
 * The vocabulary of fairkv's generated fixture models: a Llama-2-style SentencePiece BPE vocabulary
 * (`<unk>`, `<s>`, `</s>`, 256 byte-fallback tokens `<0x00>`..`<0xFF>`, '▁' and printable ASCII,
 * then merges learned deterministically from a short built-in text), written both as GGUF
 * `tokenizer.ggml.*` metadata and as a Hugging Face tokenizer.json that encodes identically (the
 * layout of transformers' `LlamaConverter`: all splits of each merged piece as merges, ranked by
 * the piece's score).
 *
 * @packageDocumentation
 */
import { SENTENCEPIECE_TOKEN_TYPES, type SentencePieceVocabulary } from './sentencepiece-bpe.js';

const SPACE_PIECE = '\u2581';

/** Text the fixture merges are learned from (public-domain style story sentences). */
export const FIXTURE_TOKENIZER_CORPUS = [
  'Once upon a time, there was a little girl named Lily.',
  'She loved to play outside in the park with her friends.',
  'One day, she saw a big red ball under the old tree.',
  'The ball was too high, so she asked her mom for help.',
  'They played together and the sun was warm and happy.',
  'fairkv places heavy attention heads on many devices.',
];

/** A vocabulary in both forms. */
export interface FixtureVocabulary {
  /** For {@link SentencePieceBpeTokenizer} and GGUF `tokenizer.ggml.*`. */
  sentencePiece: SentencePieceVocabulary & { tokenTypes: number[]; scores: number[] };
  /** A Hugging Face tokenizer.json object. */
  tokenizerJson: Record<string, unknown>;
  /** A tokenizer_config.json object. */
  tokenizerConfig: Record<string, unknown>;
}

/** Learns `mergeCount` BPE merges over the corpus (most frequent pair first, ties by pair text). */
function learnMerges(mergeCount: number, known: Set<string>): [string, string][] {
  const words = FIXTURE_TOKENIZER_CORPUS.map((line) => Array.from(SPACE_PIECE + line.replaceAll(' ', SPACE_PIECE)));
  const merges: [string, string][] = [];
  while (merges.length < mergeCount) {
    const counts = new Map<string, number>();
    for (const word of words) {
      for (let index = 0; index + 1 < word.length; index++) {
        const key = `${word[index]}\u0000${word[index + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    let best: string | undefined;
    for (const [key, count] of counts) {
      // like SentencePiece's split_by_whitespace: '▁' only ever starts a piece
      if (known.has(key.replace('\u0000', '')) || key.split('\u0000')[1]!.includes(SPACE_PIECE)) continue;
      const bestCount = best === undefined ? 0 : counts.get(best)!;
      if (count > bestCount || (count === bestCount && best !== undefined && key < best)) best = key;
    }
    if (best === undefined || counts.get(best)! < 2) break;
    const [left, right] = best.split('\u0000') as [string, string];
    merges.push([left, right]);
    known.add(left + right);
    for (const word of words) {
      for (let index = 0; index + 1 < word.length; index++) {
        if (word[index] === left && word[index + 1] === right) word.splice(index, 2, left + right);
      }
    }
  }
  return merges;
}

/** Builds the fixture vocabulary (`mergeCount` merges at most; deterministic). */
export function createFixtureVocabulary(mergeCount = 120): FixtureVocabulary {
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const tokenTypes: number[] = [
    SENTENCEPIECE_TOKEN_TYPES.unknown,
    SENTENCEPIECE_TOKEN_TYPES.control,
    SENTENCEPIECE_TOKEN_TYPES.control,
  ];
  const scores: number[] = [0, 0, 0];
  for (let byte = 0; byte < 256; byte++) {
    tokens.push(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`);
    tokenTypes.push(SENTENCEPIECE_TOKEN_TYPES.byte);
    scores.push(0);
  }
  const characters = [SPACE_PIECE];
  for (let code = 0x21; code <= 0x7e; code++) characters.push(String.fromCharCode(code));
  const known = new Set(characters);
  const merges = learnMerges(mergeCount, known);
  const firstMergeScore = -1;
  for (const character of characters) {
    tokens.push(character);
    tokenTypes.push(SENTENCEPIECE_TOKEN_TYPES.normal);
    // single characters are never merge results; their scores only order them after all merges
    scores.push(firstMergeScore - merges.length - 1);
  }
  merges.forEach(([left, right], rank) => {
    tokens.push(left + right);
    tokenTypes.push(SENTENCEPIECE_TOKEN_TYPES.normal);
    scores.push(firstMergeScore - rank);
  });
  const vocab: Record<string, number> = {};
  tokens.forEach((token, id) => {
    vocab[token] ??= id;
  });
  // every split of every merged piece into two vocabulary pieces, ranked by the piece's score
  const mergedIds = tokens.map((_, id) => id).filter((id) => tokenTypes[id] === SENTENCEPIECE_TOKEN_TYPES.normal);
  mergedIds.sort((a, b) => scores[b]! - scores[a]! || a - b);
  const hfMerges: [string, string][] = [];
  for (const id of mergedIds) {
    const piece = Array.from(tokens[id]!);
    for (let split = 1; split < piece.length; split++) {
      const left = piece.slice(0, split).join('');
      const right = piece.slice(split).join('');
      if (vocab[left] !== undefined && vocab[right] !== undefined) hfMerges.push([left, right]);
    }
  }
  const special = (id: number) => ({
    id,
    content: tokens[id],
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0), special(1), special(2)],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPACE_PIECE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPACE_PIECE },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE_PIECE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: hfMerges,
    },
  };
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    model_max_length: 1_000_000,
    tokenizer_class: 'LlamaTokenizer',
    legacy: true,
    clean_up_tokenization_spaces: false,
  };
  return {
    sentencePiece: {
      tokens,
      scores,
      tokenTypes,
      bosTokenId: 1,
      eosTokenId: 2,
      unknownTokenId: 0,
      addBos: true,
      addEos: false,
      addSpacePrefix: true,
    },
    tokenizerJson,
    tokenizerConfig,
  };
}
