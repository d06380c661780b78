/**
 * fairkv's generated fixture model: a deterministic, seeded random tiny Llama written as GGUF
 * (any version) and as a Hugging Face folder (config.json, single or sharded safetensors with
 * model.safetensors.index.json, tokenizer.json). It covers shapes stories260K lacks (MHA, head
 * dimension 64, half-split RoPE in the Hugging Face copy, sharded safetensors) and is the default
 * model on a fresh clone. Its weights are RANDOM: it generates gibberish, and every copy says so
 * (`general.description`, the `fairkv.random_weights` key, `LoadedModel.randomWeights`).
 *
 * The weights are drawn in Hugging Face layout (half-split RoPE). The GGUF copy permutes the Q and
 * K rows exactly as llama.cpp's `convert_hf_to_gguf.py` (`LlamaModel.permute`) does, so it runs
 * with adjacent-pair RoPE and computes the same function.
 *
 * @packageDocumentation
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type ModelConfig, validateModelConfig } from '@fairkv/core';
import { createFixtureVocabulary } from '../tokenizer/fixture-vocabulary.js';
import type { WritableGgmlType } from './ggml-quantize.js';
import type { GgufVersion } from './gguf-reader.js';
import type { GgufValue } from './gguf-value.js';
import { writeGgufFile } from './gguf-writer.js';
import { RANDOM_WEIGHTS_KEY } from './loaded-model.js';
import {
  type SafetensorsTensorInput,
  type WritableSafetensorsDtype,
  writeSafetensorsFile,
} from './safetensors-writer.js';
import { SeededRandom } from './seeded-random.js';
import { canonicalWeightNames, expectedWeightShape, ggufTensorName, huggingFaceTensorName } from './weight-names.js';

/** Architecture and output choices of a fixture model. */
export interface FixtureModelOptions {
  /** Random seed (default 1). */
  seed?: number;
  /** Model name (default `fairkv-fixture-random`). */
  name?: string;
  layerCount?: number;
  hiddenSize?: number;
  queryHeadCount?: number;
  kvHeadCount?: number;
  headDim?: number;
  ffnSize?: number;
  maxContext?: number;
  ropeTheta?: number;
  rmsNormEps?: number;
  tieWordEmbeddings?: boolean;
  /** Write `<dir>/<fileName>` as GGUF (default `{ fileName: 'model.gguf', version: 3, tensorType: 'f32' }`), or not. */
  gguf?: false | { fileName?: string; version?: GgufVersion; tensorType?: WritableGgmlType };
  /** Write a Hugging Face folder `<dir>/<folderName>` (default `{ folderName: 'hf', dtype: 'F32', shardCount: 1 }`), or not. */
  huggingFace?: false | { folderName?: string; dtype?: WritableSafetensorsDtype; shardCount?: number };
}

/** What {@link createFixtureModel} wrote. */
export interface FixtureModelFiles {
  /** The GGUF file, when written. */
  ggufPath: string | undefined;
  /** The Hugging Face folder, when written. */
  huggingFaceFolder: string | undefined;
  /** The architecture, as the Hugging Face copy loads (`ropeLayout` half-split; the GGUF copy loads as adjacent). */
  config: ModelConfig;
}

/** Architecture defaults: MHA with 4 heads of dimension 64. */
export const FIXTURE_MODEL_DEFAULTS = {
  seed: 1,
  name: 'fairkv-fixture-random',
  layerCount: 4,
  hiddenSize: 256,
  queryHeadCount: 4,
  kvHeadCount: 4,
  headDim: 64,
  ffnSize: 512,
  maxContext: 512,
  ropeTheta: 10000,
  rmsNormEps: 1e-5,
  tieWordEmbeddings: true,
} as const;

/** The description every fixture file carries. */
export function fixtureDescription(seed: number): string {
  return `RANDOM WEIGHTS: fairkv generated fixture model (seed ${seed}); it produces gibberish and exists for tests and demos only`;
}

/**
 * Permutes the rows of a Q or K projection from half-split to adjacent-pair RoPE layout: within each
 * head, new row `2i + j` is old row `j * headDim/2 + i` (llama.cpp `convert_hf_to_gguf.py` `permute`).
 */
export function permuteRowsForAdjacentRope(
  weight: Float32Array,
  headCount: number,
  headDim: number,
  columns: number,
): Float32Array {
  const output = new Float32Array(weight.length);
  const half = headDim / 2;
  for (let head = 0; head < headCount; head++) {
    for (let pair = 0; pair < half; pair++) {
      for (let member = 0; member < 2; member++) {
        const from = (head * headDim + member * half + pair) * columns;
        const to = (head * headDim + 2 * pair + member) * columns;
        output.set(weight.subarray(from, from + columns), to);
      }
    }
  }
  return output;
}

function drawWeights(config: ModelConfig, seed: number): Map<string, Float32Array> {
  const random = new SeededRandom(seed);
  const weights = new Map<string, Float32Array>();
  for (const name of canonicalWeightNames(config)) {
    if (name === 'output' && config.tieWordEmbeddings) continue;
    const shape = expectedWeightShape(config, name)!;
    const count = shape.reduce((product, dimension) => product * dimension, 1);
    if (shape.length === 1) weights.set(name, random.normals(count, 0.1, 1));
    else if (name === 'tokenEmbedding') weights.set(name, random.normals(count, 1));
    else weights.set(name, random.normals(count, 1 / Math.sqrt(shape[1]!)));
  }
  return weights;
}

function ggufMetadata(config: ModelConfig, seed: number): [string, GgufValue][] {
  const vocabulary = createFixtureVocabulary().sentencePiece;
  const u32 = (value: number): GgufValue => ({ type: 'uint32', value });
  const f32 = (value: number): GgufValue => ({ type: 'float32', value });
  return [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: config.name }],
    ['general.description', { type: 'string', value: fixtureDescription(seed) }],
    [RANDOM_WEIGHTS_KEY, { type: 'bool', value: true }],
    ['general.alignment', u32(32)],
    ['llama.context_length', u32(config.maxContext)],
    ['llama.embedding_length', u32(config.hiddenSize)],
    ['llama.block_count', u32(config.layerCount)],
    ['llama.feed_forward_length', u32(config.ffnSize)],
    ['llama.rope.dimension_count', u32(config.headDim)],
    ['llama.rope.freq_base', f32(config.ropeTheta)],
    ['llama.attention.head_count', u32(config.queryHeadCount)],
    ['llama.attention.head_count_kv', u32(config.kvHeadCount)],
    ['llama.attention.key_length', u32(config.headDim)],
    ['llama.attention.value_length', u32(config.headDim)],
    ['llama.attention.layer_norm_rms_epsilon', f32(config.rmsNormEps)],
    ['llama.vocab_size', u32(config.vocabSize)],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', elementType: 'string', value: [...vocabulary.tokens] }],
    ['tokenizer.ggml.scores', { type: 'array', elementType: 'float32', value: [...vocabulary.scores] }],
    ['tokenizer.ggml.token_type', { type: 'array', elementType: 'int32', value: [...vocabulary.tokenTypes] }],
    ['tokenizer.ggml.bos_token_id', u32(vocabulary.bosTokenId!)],
    ['tokenizer.ggml.eos_token_id', u32(vocabulary.eosTokenId!)],
    ['tokenizer.ggml.unknown_token_id', u32(vocabulary.unknownTokenId!)],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
    ['tokenizer.ggml.add_space_prefix', { type: 'bool', value: true }],
  ];
}

function writeGgufCopy(
  path: string,
  config: ModelConfig,
  weights: Map<string, Float32Array>,
  seed: number,
  version: GgufVersion,
  tensorType: WritableGgmlType,
) {
  const tensors = [...weights].map(([name, data]) => {
    const shape = expectedWeightShape(config, name)!;
    let values = data;
    if (name.endsWith('attention.wq'))
      values = permuteRowsForAdjacentRope(data, config.queryHeadCount, config.headDim, config.hiddenSize);
    if (name.endsWith('attention.wk'))
      values = permuteRowsForAdjacentRope(data, config.kvHeadCount, config.headDim, config.hiddenSize);
    // llama.cpp keeps 1-D norm weights in f32 whatever the file type
    return {
      name: ggufTensorName(name)!,
      shape,
      type: shape.length === 1 ? ('f32' as const) : tensorType,
      data: values,
    };
  });
  writeGgufFile(path, { version, metadata: ggufMetadata(config, seed), tensors });
}

function writeHuggingFaceCopy(
  folder: string,
  config: ModelConfig,
  weights: Map<string, Float32Array>,
  seed: number,
  dtype: WritableSafetensorsDtype,
  shardCount: number,
) {
  mkdirSync(folder, { recursive: true });
  const vocabulary = createFixtureVocabulary();
  const hfConfig = {
    _name_or_path: config.name,
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_act: 'silu',
    hidden_size: config.hiddenSize,
    intermediate_size: config.ffnSize,
    num_hidden_layers: config.layerCount,
    num_attention_heads: config.queryHeadCount,
    num_key_value_heads: config.kvHeadCount,
    head_dim: config.headDim,
    max_position_embeddings: config.maxContext,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    tie_word_embeddings: config.tieWordEmbeddings,
    vocab_size: config.vocabSize,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype],
    _fairkv_description: fixtureDescription(seed),
  };
  writeFileSync(join(folder, 'config.json'), `${JSON.stringify(hfConfig, null, 2)}\n`);
  writeFileSync(join(folder, 'tokenizer.json'), JSON.stringify(vocabulary.tokenizerJson));
  writeFileSync(join(folder, 'tokenizer_config.json'), `${JSON.stringify(vocabulary.tokenizerConfig, null, 2)}\n`);
  const tensors: SafetensorsTensorInput[] = [...weights].map(([name, data]) => ({
    name: huggingFaceTensorName(name)!,
    shape: expectedWeightShape(config, name)!,
    dtype,
    data,
  }));
  const metadata = { format: 'pt', description: fixtureDescription(seed), [RANDOM_WEIGHTS_KEY]: 'true' };
  if (shardCount === 1) {
    writeSafetensorsFile(join(folder, 'model.safetensors'), tensors, metadata);
    return;
  }
  const bytesPerElement = dtype === 'F32' ? 4 : 2;
  const totalBytes = tensors.reduce((sum, tensor) => sum + tensor.data.length * bytesPerElement, 0);
  const weightMap: Record<string, string> = {};
  const pad = (value: number) => String(value).padStart(5, '0');
  // contiguous groups of (nearly) equal tensor counts: every shard holds at least one tensor
  for (let shard = 0; shard < shardCount; shard++) {
    const fileName = `model-${pad(shard + 1)}-of-${pad(shardCount)}.safetensors`;
    const first = Math.floor((shard * tensors.length) / shardCount);
    const last = Math.floor(((shard + 1) * tensors.length) / shardCount);
    const group = tensors.slice(first, last);
    for (const tensor of group) weightMap[tensor.name] = fileName;
    writeSafetensorsFile(join(folder, fileName), group, metadata);
  }
  const index = { metadata: { total_size: totalBytes }, weight_map: weightMap };
  writeFileSync(join(folder, 'model.safetensors.index.json'), `${JSON.stringify(index, null, 2)}\n`);
}

/**
 * Writes a fixture model into `dir` (created if needed): `model.gguf` and/or the Hugging Face folder
 * `hf/`, both holding the same random weights. Deterministic for a given seed and options.
 * @throws ConfigError for inconsistent options (e.g. q8_0 with a width that is not a multiple of 32).
 */
export async function createFixtureModel(dir: string, options: FixtureModelOptions = {}): Promise<FixtureModelFiles> {
  const settings = { ...FIXTURE_MODEL_DEFAULTS, ...options };
  const vocabulary = createFixtureVocabulary();
  const config = validateModelConfig({
    name: settings.name,
    layerCount: settings.layerCount,
    hiddenSize: settings.hiddenSize,
    queryHeadCount: settings.queryHeadCount,
    kvHeadCount: settings.kvHeadCount,
    headDim: settings.headDim,
    ffnSize: settings.ffnSize,
    vocabSize: vocabulary.sentencePiece.tokens.length,
    ropeTheta: settings.ropeTheta,
    ropeScaling: null,
    ropeLayout: 'half-split',
    rmsNormEps: settings.rmsNormEps,
    tieWordEmbeddings: settings.tieWordEmbeddings,
    maxContext: settings.maxContext,
  });
  const gguf =
    options.gguf === false
      ? undefined
      : { fileName: 'model.gguf', version: 3 as GgufVersion, tensorType: 'f32' as WritableGgmlType, ...options.gguf };
  const huggingFace =
    options.huggingFace === false
      ? undefined
      : { folderName: 'hf', dtype: 'F32' as WritableSafetensorsDtype, shardCount: 1, ...options.huggingFace };
  if (gguf && ['q8_0', 'q4_0', 'q4_1'].includes(gguf.tensorType)) {
    for (const [field, value] of [
      ['hiddenSize', config.hiddenSize],
      ['ffnSize', config.ffnSize],
      ['queryHeadCount * headDim', config.queryHeadCount * config.headDim],
    ] as const) {
      if (value % 32 !== 0)
        throw new ConfigError(`${field} ${value} must be a multiple of 32 for ${gguf.tensorType} tensors`, [
          { path: `$.${field}`, message: 'must be a multiple of 32' },
        ]);
    }
  }
  if (huggingFace && !(Number.isInteger(huggingFace.shardCount) && huggingFace.shardCount >= 1)) {
    throw new ConfigError(`huggingFace.shardCount must be a positive integer, got ${huggingFace.shardCount}`, [
      { path: '$.huggingFace.shardCount', message: 'must be a positive integer' },
    ]);
  }
  mkdirSync(dir, { recursive: true });
  const weights = drawWeights(config, settings.seed);
  const ggufPath = gguf ? join(dir, gguf.fileName) : undefined;
  if (gguf && ggufPath) writeGgufCopy(ggufPath, config, weights, settings.seed, gguf.version, gguf.tensorType);
  const huggingFaceFolder = huggingFace ? join(dir, huggingFace.folderName) : undefined;
  if (huggingFace && huggingFaceFolder) {
    writeHuggingFaceCopy(
      huggingFaceFolder,
      config,
      weights,
      settings.seed,
      huggingFace.dtype,
      Math.min(huggingFace.shardCount, weights.size),
    );
  }
  return { ggufPath, huggingFaceFolder, config };
}
