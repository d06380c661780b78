import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { temporaryFolder } from './__fixtures__/cli-process.js';
import { exitCodeOf } from './cli-error.js';
import { resolveModelConfig } from './model-source.js';

describe('plan --model: presets and config.json files', () => {
  const folder = temporaryFolder('model-source');

  it('reads a preset or a Hugging Face config.json', async () => {
    expect((await resolveModelConfig('llama-3.3-70b')).layerCount).toBe(80);
    const path = join(folder, 'config.json');
    writeFileSync(
      path,
      JSON.stringify({
        model_type: 'mistral',
        num_hidden_layers: 40,
        hidden_size: 5120,
        num_attention_heads: 32,
        num_key_value_heads: 8,
        head_dim: 128,
        intermediate_size: 32768,
        vocab_size: 131072,
        max_position_embeddings: 32768,
      }),
    );
    expect(await resolveModelConfig(path)).toMatchObject({
      name: 'mistral',
      layerCount: 40,
      kvHeadCount: 8,
      headDim: 128,
    });
  });

  it('names the file and field of a bad config.json (exit 2)', async () => {
    const broken = join(folder, 'broken.json');
    writeFileSync(broken, JSON.stringify({ model_type: 'llama', num_hidden_layers: 'many' }));
    const notJson = join(folder, 'not.json');
    writeFileSync(notJson, '{"model_type": ');
    for (const [path, pattern] of [
      [broken, /--model .*broken\.json: invalid Hugging Face config\.json:\n.*\$\.num_hidden_layers/s],
      [notJson, /--model .*not\.json: not valid JSON/],
      ['gpt-17', /--model gpt-17: not a preset \(llama-3.1-8b, .*\) and no such file or directory/],
    ] as const) {
      const error = await resolveModelConfig(path).catch((caught: unknown) => caught);
      expect(exitCodeOf(error), path).toBe(2);
      expect((error as Error).message).toMatch(pattern);
    }
  });
});
