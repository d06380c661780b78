/**
 * A small byte-level BPE vocabulary (GPT-2 / Llama 3 style) and a naive reference encoder, for
 * testing the GGUF `gpt2` tokenizer independently of @huggingface/tokenizers.
 */
import type { GgufValue } from '../model/gguf-value.js';

/** GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the rest to U+0100 onwards. */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const table: string[] = new Array(256);
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255);
    table[byte] = String.fromCodePoint(printable ? byte : next++);
  }
  return table;
})();

/** Llama 3's split regex written without inline flags, for JavaScript's RegExp. */
export const LLAMA3_SPLIT =
  /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

const CORPUS =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. The ball was 123 feet high! I'll say: they're happy.\n";

function toByteLevel(text: string): string[] {
  return Array.from(new TextEncoder().encode(text), (byte) => BYTE_TO_UNICODE[byte]!);
}

/** Vocabulary, merges and GGUF metadata of the fixture byte-level BPE. */
export function createByteLevelVocabulary(mergeCount = 60) {
  const words = (CORPUS.match(LLAMA3_SPLIT) ?? []).map(toByteLevel);
  const merges: [string, string][] = [];
  while (merges.length < mergeCount) {
    const counts = new Map<string, number>();
    for (const word of words) {
      for (let index = 0; index + 1 < word.length; index++) {
        const key = `${word[index]} ${word[index + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    let best: string | undefined;
    for (const [key, count] of counts)
      if (best === undefined || count > counts.get(best)! || (count === counts.get(best)! && key < best)) best = key;
    if (best === undefined) break;
    const [left, right] = best.split(' ') as [string, string];
    merges.push([left, right]);
    for (const word of words) {
      for (let index = 0; index + 1 < word.length; index++) {
        if (word[index] === left && word[index + 1] === right) word.splice(index, 2, left + right);
      }
    }
  }
  const tokens = [
    ...BYTE_TO_UNICODE,
    ...merges.map(([left, right]) => left + right),
    '<|begin_of_text|>',
    '<|end_of_text|>',
  ];
  const tokenTypes = tokens.map((_, id) => (id >= tokens.length - 2 ? 3 : 1));
  const bos = tokens.length - 2;
  const eos = tokens.length - 1;
  const metadata: [string, GgufValue][] = [
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: 'string', value: 'llama-bpe' }],
    ['tokenizer.ggml.tokens', { type: 'array', elementType: 'string', value: tokens }],
    ['tokenizer.ggml.token_type', { type: 'array', elementType: 'int32', value: tokenTypes }],
    [
      'tokenizer.ggml.merges',
      { type: 'array', elementType: 'string', value: merges.map(([left, right]) => `${left} ${right}`) },
    ],
    ['tokenizer.ggml.bos_token_id', { type: 'uint32', value: bos }],
    ['tokenizer.ggml.eos_token_id', { type: 'uint32', value: eos }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
  ];
  return { tokens, merges, bos, eos, metadata };
}

/**
 * Naive byte-level BPE (the algorithm of GPT-2's `encoder.py`): split with the regex, map bytes to
 * characters, repeatedly merge the adjacent pair of lowest merge rank (leftmost first); a word that is
 * a whole vocabulary entry is kept as is (`ignore_merges`, as Llama 3 does).
 */
export function naiveByteLevelEncode(
  tokens: readonly string[],
  merges: readonly [string, string][],
  text: string,
  bos: number,
): number[] {
  const ids = new Map(tokens.map((token, id) => [token, id] as const));
  const ranks = new Map(merges.map(([left, right], rank) => [`${left} ${right}`, rank] as const));
  const output = [bos];
  for (const piece of text.match(LLAMA3_SPLIT) ?? []) {
    let word = toByteLevel(piece);
    if (ids.has(word.join(''))) {
      output.push(ids.get(word.join(''))!);
      continue;
    }
    for (;;) {
      let bestRank = Number.POSITIVE_INFINITY;
      let bestIndex = -1;
      for (let index = 0; index + 1 < word.length; index++) {
        const rank = ranks.get(`${word[index]} ${word[index + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          bestIndex = index;
        }
      }
      if (bestIndex < 0) break;
      word = [...word.slice(0, bestIndex), word[bestIndex]! + word[bestIndex + 1]!, ...word.slice(bestIndex + 2)];
    }
    for (const symbol of word) output.push(ids.get(symbol)!);
  }
  return output;
}
