/**
 * Loads a Llama-family model from a Hugging Face folder: `config.json` (core `parseHfConfig`),
 * `model.safetensors` or shards listed in `model.safetensors.index.json`, and `tokenizer.json`
 * (with `tokenizer_config.json` when present). Shard names must be plain file names inside the
 * folder. Only JSON and safetensors are read: no pickle, no code from the folder ever runs.
 *
 * @packageDocumentation
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type ModelConfig, parseHfConfig, UnsupportedError } from '@fairkv/core';
import { HuggingFaceTokenizer } from '../tokenizer/huggingface-tokenizer.js';
import { formatError } from './byte-source.js';
import { type LoadedModel, type LoadModelOptions, RANDOM_WEIGHTS_KEY } from './loaded-model.js';
import { createModelWeights } from './model-weights.js';
import { READABLE_SAFETENSORS_DTYPES, SafetensorsFile } from './safetensors-reader.js';
import type { StoredTensor } from './stored-tensor.js';
import { expectedWeightShape, huggingFaceTensorName, iterateCanonicalWeightNames } from './weight-names.js';

/** File names of a Hugging Face model folder. */
export const HF_FILES = {
  config: 'config.json',
  weights: 'model.safetensors',
  index: 'model.safetensors.index.json',
  tokenizer: 'tokenizer.json',
  tokenizerConfig: 'tokenizer_config.json',
} as const;

function readJson(path: string): unknown {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw formatError(path, '$', 0, `not valid JSON (${(error as Error).message})`);
  }
}

/** Reads `model.safetensors.index.json`: tensor name -> shard file name, shard names checked. */
export function readSafetensorsIndex(indexPath: string): Map<string, string> {
  const json = readJson(indexPath) as { weight_map?: unknown };
  const weightMap = json?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw formatError(indexPath, '$.weight_map', 0, 'expected an object mapping tensor names to shard files');
  }
  const map = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    const field = `$.weight_map[${JSON.stringify(tensor)}]`;
    if (
      typeof shard !== 'string' ||
      shard === '' ||
      shard !== basename(shard) ||
      shard === '.' ||
      shard === '..' ||
      shard.includes('\\')
    ) {
      throw formatError(
        indexPath,
        field,
        0,
        `expected a file name inside the model folder, got ${JSON.stringify(shard)}`,
      );
    }
    map.set(tensor, shard);
  }
  return map;
}

/** Opens the safetensors files of a folder and returns every tensor by its stored name. */
function openWeights(folder: string, opened: SafetensorsFile[]): Map<string, StoredTensor> {
  const tensors = new Map<string, StoredTensor>();
  const indexPath = join(folder, HF_FILES.index);
  const singlePath = join(folder, HF_FILES.weights);
  if (existsSync(indexPath)) {
    const index = readSafetensorsIndex(indexPath);
    const shards = new Map<string, SafetensorsFile>();
    for (const [name, shardName] of index) {
      let shard = shards.get(shardName);
      if (!shard) {
        const shardPath = join(folder, shardName);
        if (!existsSync(shardPath)) {
          throw formatError(
            indexPath,
            `$.weight_map[${JSON.stringify(name)}]`,
            0,
            `shard ${shardName} does not exist in ${folder}`,
          );
        }
        shard = SafetensorsFile.open(shardPath);
        opened.push(shard);
        shards.set(shardName, shard);
      }
      const tensor = shard.tensor(name);
      if (!tensor)
        throw formatError(
          shard.header.file,
          `tensor ${name}`,
          8,
          `listed in ${HF_FILES.index} but missing from the shard`,
        );
      tensors.set(name, tensor);
    }
    return tensors;
  }
  if (!existsSync(singlePath)) {
    throw formatError(
      folder,
      HF_FILES.weights,
      0,
      `missing: expected ${HF_FILES.weights} or ${HF_FILES.index} (pickled .bin weights are never loaded)`,
    );
  }
  const file = SafetensorsFile.open(singlePath);
  opened.push(file);
  for (const name of file.tensorNames()) tensors.set(name, file.tensor(name)!);
  return tensors;
}

function selectWeights(
  folder: string,
  config: ModelConfig,
  stored: Map<string, StoredTensor>,
): { tensors: Map<string, StoredTensor>; tied: boolean } {
  const tensors = new Map<string, StoredTensor>();
  // like transformers: tied only when config.json says so (a missing lm_head.weight otherwise is an error,
  // where transformers would silently initialise it at random)
  const tied = config.tieWordEmbeddings;
  for (const name of iterateCanonicalWeightNames(config)) {
    if (name === 'output' && tied) continue;
    const storedName = huggingFaceTensorName(name)!;
    const tensor = stored.get(storedName);
    if (!tensor)
      throw formatError(
        folder,
        `tensor ${storedName}`,
        0,
        `required tensor is missing from the safetensors files (config.json says ${config.layerCount} layers)`,
      );
    const expected = expectedWeightShape(config, name)!;
    if (
      tensor.shape.length !== expected.length ||
      tensor.shape.some((dimension, axis) => dimension !== expected[axis])
    ) {
      throw formatError(
        tensor.file,
        `tensor ${storedName} shape`,
        8,
        `expected [${expected.join(', ')}], got [${tensor.shape.join(', ')}]`,
      );
    }
    if (!READABLE_SAFETENSORS_DTYPES.includes(tensor.storedType)) {
      throw new UnsupportedError(
        `${tensor.file}: tensor ${storedName} has dtype ${tensor.storedType}: expected one of ${READABLE_SAFETENSORS_DTYPES.join(', ')}`,
      );
    }
    tensors.set(name, tensor);
  }
  return { tensors, tied };
}

/**
 * Loads a Llama-family model from a Hugging Face folder (weights read lazily).
 * @throws ConfigError for an invalid config.json (JSON paths listed).
 * @throws FormatError for malformed JSON, safetensors headers or index files, missing files or tensors.
 */
export async function loadHuggingFaceModel(folder: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const configPath = join(folder, HF_FILES.config);
  if (!existsSync(configPath))
    throw formatError(folder, HF_FILES.config, 0, 'missing: a Hugging Face model folder needs config.json');
  const json = readJson(configPath);
  const storedName = (json as { _name_or_path?: unknown })?._name_or_path;
  const config = parseHfConfig(
    json,
    options.name ?? (typeof storedName === 'string' && storedName !== '' ? basename(storedName) : basename(folder)),
  );
  const tokenizerPath = join(folder, HF_FILES.tokenizer);
  if (!existsSync(tokenizerPath))
    throw formatError(folder, HF_FILES.tokenizer, 0, 'missing: expected tokenizer.json beside config.json');
  const tokenizerConfigPath = join(folder, HF_FILES.tokenizerConfig);
  const tokenizer = HuggingFaceTokenizer.fromFiles(
    tokenizerPath,
    existsSync(tokenizerConfigPath) ? tokenizerConfigPath : undefined,
  );
  const opened: SafetensorsFile[] = [];
  const close = () => {
    for (const file of opened) file.close();
  };
  try {
    const stored = openWeights(folder, opened);
    const { tensors, tied } = selectWeights(folder, config, stored);
    const metadata = opened[0]?.header.metadata ?? {};
    return {
      path: folder,
      format: 'safetensors',
      config: { ...config, tieWordEmbeddings: tied },
      tokenizer,
      weights: createModelWeights(tensors, tied),
      description: metadata.description,
      randomWeights: metadata[RANDOM_WEIGHTS_KEY] === 'true',
      close,
    };
  } catch (error) {
    close();
    throw error;
  }
}
