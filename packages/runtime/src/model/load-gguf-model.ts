/**
 * Loads a Llama-family model from a GGUF file (versions 1-3): architecture from the metadata, the
 * SentencePiece tokenizer stored inside, and lazily read weights under canonical names. Every tensor
 * the architecture needs is checked for presence, shape and a readable type before anything else
 * happens. A stored `output.weight` identical to the embedding (llama2.c exports store it twice)
 * counts as tied.
 *
 * @packageDocumentation
 */
import { basename } from 'node:path';
import { UnsupportedError } from '@fairkv/core';
import { tokenizerFromGguf } from '../tokenizer/gguf-tokenizer.js';
import { formatError } from './byte-source.js';
import { READABLE_GGML_TYPES } from './ggml-types.js';
import { GgufFile } from './gguf-file.js';
import { GgufMetadata } from './gguf-metadata.js';
import { llamaConfigFromGguf } from './llama-gguf-config.js';
import { recoverLlama3Scaling } from './llama3-rope-factors.js';
import { type LoadedModel, type LoadModelOptions, RANDOM_WEIGHTS_KEY } from './loaded-model.js';
import { createModelWeights } from './model-weights.js';
import type { StoredTensor } from './stored-tensor.js';
import { expectedWeightShape, ggufTensorName, iterateCanonicalWeightNames } from './weight-names.js';

const COMPARE_CHUNK_BYTES = 4 << 20;

/** Whether two stored tensors hold the same bytes (chunked; stops at the first difference). */
export async function sameStoredBytes(first: StoredTensor, second: StoredTensor): Promise<boolean> {
  if (first.storedType !== second.storedType || first.byteLength !== second.byteLength) return false;
  const rows = first.shape[0] ?? 1;
  const rowBytes = first.byteLength / Math.max(1, rows);
  const chunkRows = Math.max(1, Math.floor(COMPARE_CHUNK_BYTES / Math.max(1, rowBytes)));
  for (let row = 0; row < rows; row += chunkRows) {
    const count = Math.min(chunkRows, rows - row);
    const [a, b] = await Promise.all([first.readRows(row, count), second.readRows(row, count)]);
    for (let index = 0; index < a.length; index++) {
      if (a[index] !== b[index] && !(Number.isNaN(a[index]) && Number.isNaN(b[index]))) return false;
    }
  }
  return true;
}

/** Loads an already opened GGUF file as a Llama model; the model owns (and closes) the file. */
export async function loadGgufModelFromFile(gguf: GgufFile, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const file = gguf.header.file;
  const metadata = new GgufMetadata(gguf.header);
  const embedding = gguf.tensor('token_embd.weight');
  const embeddingInfo = gguf.header.tensors.find((info) => info.name === 'token_embd.weight');
  if (!embedding || !embeddingInfo)
    throw formatError(file, 'tensor token_embd.weight', gguf.header.dataStart, 'required tensor is missing');
  if (embedding.shape.length !== 2) {
    throw formatError(
      file,
      'tensor token_embd.weight shape',
      embeddingInfo.infoOffset,
      `expected 2 dimensions, got [${embedding.shape.join(', ')}]`,
    );
  }
  const baseConfig = llamaConfigFromGguf(metadata, embedding.shape[0]!, options.name);
  let config = baseConfig;
  const ropeFrequencies = gguf.tensor('rope_freqs.weight');
  if (ropeFrequencies) {
    // Llama 3.1/3.2: llama.cpp stores the effect of rope_scaling, not its parameters
    const stored = READABLE_GGML_TYPES.includes(ropeFrequencies.storedType)
      ? await ropeFrequencies.read()
      : new Float32Array(0);
    const ropeScaling = recoverLlama3Scaling(stored, config.ropeTheta, config.headDim);
    if (!ropeScaling || config.ropeScaling !== null) {
      throw new UnsupportedError(
        `${file}: rope_freqs.weight holds per-pair RoPE divisors that match no known Llama 3 scaling (factor, low 1, high 4, original context 8192)`,
      );
    }
    config = { ...config, ropeScaling };
  }
  const tokenizer = tokenizerFromGguf(metadata);
  if (tokenizer.vocabSize > config.vocabSize) {
    metadata.fail(
      'tokenizer.ggml.tokens',
      `${tokenizer.vocabSize} tokens but token_embd.weight has only ${config.vocabSize} rows`,
    );
  }

  const tensors = new Map<string, StoredTensor>();
  for (const name of iterateCanonicalWeightNames(config)) {
    const storedName = ggufTensorName(name)!;
    const tensor = gguf.tensor(storedName);
    if (!tensor) {
      if (name === 'output') continue;
      throw formatError(
        file,
        `tensor ${storedName}`,
        gguf.header.dataStart,
        `required tensor is missing (${metadata.string('general.architecture')}.block_count says ${config.layerCount} layers)`,
      );
    }
    const expected = expectedWeightShape(config, name)!;
    if (
      tensor.shape.length !== expected.length ||
      tensor.shape.some((dimension, axis) => dimension !== expected[axis])
    ) {
      const info = gguf.header.tensors.find((candidate) => candidate.name === storedName)!;
      throw formatError(
        file,
        `tensor ${storedName} shape`,
        info.infoOffset,
        `expected [${expected.join(', ')}] ([out, in]; GGUF ne [${[...expected].reverse().join(', ')}]), got [${tensor.shape.join(', ')}]`,
      );
    }
    if (!READABLE_GGML_TYPES.includes(tensor.storedType)) {
      throw new UnsupportedError(
        `${file}: tensor ${storedName} has type ${tensor.storedType}, which cannot be dequantised yet: expected one of ${READABLE_GGML_TYPES.join(', ')}`,
      );
    }
    tensors.set(name, tensor);
  }
  const storedOutput = tensors.get('output');
  const tied = storedOutput === undefined || (await sameStoredBytes(storedOutput, tensors.get('tokenEmbedding')!));
  if (tied) tensors.delete('output');

  return {
    path: file,
    format: 'gguf',
    config: {
      ...config,
      name: options.name ?? metadata.string('general.name') ?? basename(file, '.gguf'),
      tieWordEmbeddings: tied,
    },
    tokenizer,
    weights: createModelWeights(tensors, tied),
    description: metadata.string('general.description'),
    randomWeights: metadata.has(RANDOM_WEIGHTS_KEY) && metadata.boolean(RANDOM_WEIGHTS_KEY) === true,
    close: () => gguf.close(),
  };
}

/**
 * Loads a Llama-family model from a GGUF file. Reads the header and the tokenizer; weights are read
 * when asked for.
 * @throws FormatError for a malformed or truncated file (naming the file, the field and the offset).
 * @throws UnsupportedError for valid files fairkv cannot run yet (other architectures, k-quants).
 */
export async function loadGgufModel(path: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const gguf = GgufFile.open(path);
  try {
    return await loadGgufModelFromFile(gguf, options);
  } catch (error) {
    gguf.close();
    throw error;
  }
}
