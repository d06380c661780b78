/**
 * The embedded default model: until fairkv ships a trained model, the runtime's generated fixture
 * model (a tiny random Llama, `createFixtureModel` in @fairkv/runtime), written once to a cache folder
 * so it exists on a fresh clone with nothing downloaded. Its weights are random: it produces gibberish,
 * and every command that uses it says so. `--model` or `FAIRKV_MODEL` select a real model instead.
 *
 * @packageDocumentation
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFixtureModel } from '@fairkv/runtime';

/** Bumped whenever the default model's options change, so stale caches are not reused. */
const DEFAULT_MODEL_REVISION = 1;

/** Name the default model carries (`general.name`). */
export const DEFAULT_MODEL_NAME = 'fairkv-default-random';

/** Folder the default model is cached in: `$FAIRKV_CACHE_DIR` or the OS temp folder, plus a revision. */
export function defaultModelFolder(): string {
  const root = process.env.FAIRKV_CACHE_DIR || join(tmpdir(), 'fairkv-default-model');
  return join(root, `r${DEFAULT_MODEL_REVISION}`);
}

/**
 * Returns the path of the default model's GGUF file, generating it on first use (about 1 MB, under a
 * second). Concurrent first uses are safe: each writes a private folder and renames it into place.
 */
export async function ensureDefaultModel(): Promise<string> {
  const folder = defaultModelFolder();
  const path = join(folder, 'model.gguf');
  if (existsSync(path)) return path;
  const staging = `${folder}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(staging, { recursive: true });
  try {
    await createFixtureModel(staging, { name: DEFAULT_MODEL_NAME, seed: 1, huggingFace: false });
    try {
      renameSync(staging, folder);
    } catch (error) {
      // another process won the race: its copy is identical (the generator is deterministic)
      if (!existsSync(path)) throw error;
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return path;
}
