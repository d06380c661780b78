/**
 * Prompts and synthetic DuoAttention gates for `fairkv demo` (and the default load of `fairkv bench`):
 * short children's-story openings in the style of TinyStories (the data stories260K was trained on),
 * long enough that compression policies have something to drop.
 *
 * @packageDocumentation
 */
import { seededRandom } from '@fairkv/core';

/** Story openings, 35 to 50 words each. */
export const DEMO_PROMPTS: readonly string[] = [
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day, she saw a big red ball under the old tree, and she wanted to play with it. The ball was too high, so',
  'Tom had a small brown dog named Max. Every morning they walked to the river and looked at the fish. One day the water was very cold and Max did not want to go in. Tom sat down on a rock and',
  'The sun was warm and the sky was blue. Mia and her mom went to the store to buy apples, bread and milk. On the way home, Mia saw a little bird that could not fly. She picked it up and',
  'Ben liked to build tall towers with his blocks. His sister Sue liked to knock them down. One day Ben built the tallest tower he had ever made, and he asked Sue to help him instead. Sue smiled and',
  'In a small house near the woods lived an old cat named Whiskers. He was tired of chasing mice, so he spent his days sleeping in the sun. One night he heard a strange noise in the kitchen, and',
  'Anna found a shiny key in the garden. She did not know what it could open, so she tried the door, the box and the old chest in the attic. When she turned the key in the chest,',
  'The little train went up the big hill every day. It was slow, but it never gave up. One winter morning the snow was deep and the other trains stayed home. The little train said to itself,',
  'Sam and Zoe wanted to make a cake for their dad. They mixed flour, eggs and sugar in a big bowl. Zoe dropped an egg on the floor and Sam laughed so hard that the flour flew everywhere, and',
];

/** `count` prompts, cycling through {@link DEMO_PROMPTS}. */
export function demoPrompts(count: number): string[] {
  return Array.from({ length: count }, (_, index) => DEMO_PROMPTS[index % DEMO_PROMPTS.length]!);
}

/**
 * Seeded synthetic DuoAttention gates `[layer][kvHead]` (mulberry32 uniform u, gate = u^3), so that
 * at DuoAttention's released threshold 0.5 about one head in five is a retrieval head (keeps the whole
 * context) and the rest stream (sink + recent): an imbalanced load like the real gate files', for
 * models that have none. They are not trained gates, and the demo says so.
 */
export function syntheticGates(layerCount: number, kvHeadCount: number, seed = 1): number[][] {
  const next = seededRandom(seed);
  return Array.from({ length: layerCount }, () => Array.from({ length: kvHeadCount }, () => next() ** 3));
}
