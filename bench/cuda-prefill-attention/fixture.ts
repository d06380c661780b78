/**
 * Writes the model of the prefill time-to-first-token measurement (bench/cuda-prefill-attention/NOTES.md):
 * fairkv's random fixture model with the attention and MLP shape of Llama-3.1-8B (hidden 4096, 32 query
 * heads, 8 kv heads, head dim 128, FFN 14336) but FAIRKV_FIXTURE_LAYERS layers (default 2), bf16 GGUF,
 * and a prompt file of about FAIRKV_FIXTURE_PROMPT_TOKENS tokens (default 4096) of its vocabulary.
 *
 *   npx tsx bench/cuda-prefill-attention/fixture.ts <dir>   (writes <dir>/model.gguf and <dir>/prompt.txt)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createFixtureModel, loadModel } from '@fairkv/runtime';
import { positiveIntegersFromEnv } from '../env-integers.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: fixture.ts <dir>');
const layerCount = positiveIntegersFromEnv('FAIRKV_FIXTURE_LAYERS', '2')[0]!;
const promptTokens = positiveIntegersFromEnv('FAIRKV_FIXTURE_PROMPT_TOKENS', '4096')[0]!;
const files = await createFixtureModel(dir, {
  layerCount,
  hiddenSize: 4096,
  queryHeadCount: 32,
  kvHeadCount: 8,
  headDim: 128,
  ffnSize: 14336,
  maxContext: 2 * promptTokens + 256,
  gguf: { tensorType: 'bf16' },
  huggingFace: false,
});
const model = await loadModel(files.ggufPath!);
// phrases added in batches sized from the tokens per phrase so far (one encode per batch, not per phrase)
const words: string[] = [];
for (let count = 0; count < promptTokens; count = model.tokenizer.encode(words.join(' ')).length) {
  // one phrase first, to measure its tokens
  const missing = words.length === 0 ? 1 : Math.max(1, Math.floor(((promptTokens - count) * words.length) / count));
  for (let j = 0; j < missing; j++) words.push(`the ${words.length % 7} little ${words.length % 5} girls play`);
}
writeFileSync(join(dir, 'prompt.txt'), words.join(' '));
console.log(`${files.ggufPath}: ${layerCount} layers; prompt ${model.tokenizer.encode(words.join(' ')).length} tokens`);
model.close();
