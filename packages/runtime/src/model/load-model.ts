/**
 * One entry point for every model format: a GGUF file or a Hugging Face folder.
 *
 * @packageDocumentation
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { formatError } from './byte-source.js';
import { GGUF_MAGIC } from './gguf-reader.js';
import { loadGgufModel } from './load-gguf-model.js';
import { loadHuggingFaceModel } from './load-huggingface-model.js';
import type { LoadedModel, LoadModelOptions } from './loaded-model.js';

/**
 * Loads a Llama-family model from `path`: a folder is read as a Hugging Face model
 * (config.json + safetensors + tokenizer.json), a file must be GGUF (checked by its magic).
 * @throws FormatError for malformed files, ConfigError for an invalid config.json,
 *   UnsupportedError for valid models fairkv cannot run yet.
 */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  if (statSync(path).isDirectory()) return loadHuggingFaceModel(path, options);
  const fd = openSync(path, 'r');
  const magic = new Uint8Array(4);
  let count: number;
  try {
    count = readSync(fd, magic, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  const value = new DataView(magic.buffer).getUint32(0, true);
  if (count < 4 || value !== GGUF_MAGIC) {
    throw formatError(path, 'magic', 0, 'expected a GGUF file (magic "GGUF") or a Hugging Face model folder');
  }
  return loadGgufModel(path, options);
}
