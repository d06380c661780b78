/**
 * A direct port of karpathy/llama2.c `run.c` `encode()` (quadratic rescan after every merge, byte
 * fallback as `<0xXX>` tokens), used as an independent oracle for the heap-based SentencePiece BPE.
 * Differences from run.c, both of vocabulary form only: GGUF vocabularies spell a space '▁' (run.c's
 * tokenizer.bin has ' '), and byte tokens are looked up by their `<0xXX>` piece instead of `byte + 3`.
 */
export function naiveLlama2cEncode(
  tokens: readonly string[],
  scores: ArrayLike<number>,
  text: string,
  bos: number | undefined,
): number[] {
  const lookup = new Map<string, number>();
  tokens.forEach((token, id) => {
    if (!lookup.has(token)) lookup.set(token, id);
  });
  const output: number[] = [];
  if (bos !== undefined) output.push(bos);
  if (text === '') return output;
  const normalised = `\u2581${text.replaceAll(' ', '\u2581')}`;
  for (const character of normalised) {
    const id = lookup.get(character);
    if (id !== undefined) {
      output.push(id);
      continue;
    }
    for (const byte of new TextEncoder().encode(character)) {
      output.push(lookup.get(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`)!);
    }
  }
  const start = bos !== undefined ? 1 : 0;
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIndex = -1;
    for (let index = start; index < output.length - 1; index++) {
      const id = lookup.get(tokens[output[index]!]! + tokens[output[index + 1]!]!);
      if (id !== undefined && scores[id]! > bestScore) {
        bestScore = scores[id]!;
        bestId = id;
        bestIndex = index;
      }
    }
    if (bestIndex === -1) break;
    output.splice(bestIndex, 2, bestId);
  }
  return output;
}
