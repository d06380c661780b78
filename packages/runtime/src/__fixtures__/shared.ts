import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { HeadLoadProfile } from '@fairkv/core';
import { syntheticHeavyTailedProfile } from '@fairkv/placement';

/** `../shared` beside the checkout (DESIGN.md): real models; tests skip when it is missing. */
export const SHARED_DIR = fileURLToPath(new URL('../../../../../shared/', import.meta.url));

/** The real stories260K model (GGUF v1, float32, SentencePiece tokenizer inside). */
export const STORIES_260K_PATH = `${SHARED_DIR}models/stories260K.gguf`;

/** Whether stories260K is available. */
export const hasStories260k = existsSync(STORIES_260K_PATH);

/** Why stories260K tests are skipped. */
export const STORIES_260K_SKIP_MESSAGE = `skipped: ${STORIES_260K_PATH} is missing (../shared is not beside this checkout)`;

/** The golden greedy continuation of "Once upon a time" from ../shared/models/README.md. */
export const STORIES_260K_GOLDEN =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.';

/**
 * A heavy-tailed head-load profile in the shape of stories260K (5 layers x 4 kv heads, 512-token
 * context): the placement tests' input for fair-copy plans with copied heads.
 */
export function storiesShapedProfile(seed: number): HeadLoadProfile {
  return syntheticHeavyTailedProfile({ layerCount: 5, kvHeadCount: 4, contextLength: 512, sigma: 1.5, seed });
}
