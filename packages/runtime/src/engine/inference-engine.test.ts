import { describe, expect, it } from 'vitest';
import {
  hasStories260k,
  STORIES_260K_GOLDEN,
  STORIES_260K_PATH,
  STORIES_260K_SKIP_MESSAGE,
} from '../__fixtures__/shared.js';
import { loadModel } from '../model/load-model.js';
import { createInferenceEngine } from './create-engine.js';

describe.skipIf(!hasStories260k)('inference engine on stories260K', () => {
  it('greedy "Once upon a time" on one CPU device gives the golden text', async () => {
    const model = await loadModel(STORIES_260K_PATH);
    const engine = await createInferenceEngine({ model, execution: 'inline' });
    try {
      const stream = engine.generate('Once upon a time', { maxTokens: 60 });
      let streamed = '';
      for await (const chunk of stream) streamed += chunk.text;
      const result = await stream.result;
      const text = `Once upon a time${result.text}`;
      expect(text.startsWith(STORIES_260K_GOLDEN)).toBe(true);
      expect(result.finishReason).toBe('length');
      expect(result.keptTokens.flat().every((kept) => kept === result.promptTokenIds.length)).toBe(true);
      expect(streamed).toBe(result.text);
    } finally {
      await engine.dispose();
      model.close();
    }
  });
});
if (!hasStories260k) it.skip(STORIES_260K_SKIP_MESSAGE, () => {});
