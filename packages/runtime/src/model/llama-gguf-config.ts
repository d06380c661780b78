/**
 * The {@link ModelConfig} of a Llama-family GGUF file, from llama.cpp's `{arch}.*` hyperparameter
 * keys (ggml docs/gguf.md "LLM"). GGUF Llama weights rotate adjacent pairs: llama.cpp's
 * `convert_hf_to_gguf.py` permutes the Q and K rows of Hugging Face checkpoints back to Meta's
 * layout, and llama.cpp applies `LLAMA_ROPE_TYPE_NORM` to the `llama` architecture.
 *
 * @packageDocumentation
 */
import { ConfigError, type ModelConfig, type RopeScaling, UnsupportedError, validateModelConfig } from '@fairkv/core';
import { formatError } from './byte-source.js';
import { type GgufMetadata, shortestFloat32Decimal } from './gguf-metadata.js';

/** GGUF architectures read as Llama (Mistral GGUF files use `llama`). */
export const LLAMA_GGUF_ARCHITECTURES: readonly string[] = ['llama', 'mistral'];

function perLayerInteger(metadata: GgufMetadata, key: string): number | undefined {
  const entry = metadata.entry(key);
  if (entry?.value.type !== 'array') return metadata.integer(key);
  const values = metadata.numberArray(key)!;
  if (values.length === 0 || values.some((value) => value !== values[0])) {
    throw new UnsupportedError(
      `${metadata.header.file}: ${key} differs between layers (${values.join(', ')}), which fairkv does not support`,
    );
  }
  return values[0];
}

/**
 * Reads the architecture of a Llama GGUF file.
 * @param vocabSize - rows of the token embedding (the vocabulary size the weights were trained with)
 * @throws FormatError naming the key when a value is missing, of the wrong type or inconsistent.
 * @throws UnsupportedError for other architectures, partial rotary dimensions or unknown RoPE scaling.
 */
export function llamaConfigFromGguf(metadata: GgufMetadata, vocabSize: number, name?: string): ModelConfig {
  const file = metadata.header.file;
  const architecture = metadata.string('general.architecture');
  if (architecture === undefined) throw formatError(file, 'general.architecture', 0, 'required key is missing');
  if (!LLAMA_GGUF_ARCHITECTURES.includes(architecture)) {
    throw new UnsupportedError(
      `${file}: architecture "${architecture}" is not supported: expected ${LLAMA_GGUF_ARCHITECTURES.join(' or ')}`,
    );
  }
  const key = (suffix: string) => `${architecture}.${suffix}`;
  const layerCount = metadata.requiredInteger(key('block_count'));
  const hiddenSize = metadata.requiredInteger(key('embedding_length'));
  const queryHeadCount = perLayerInteger(metadata, key('attention.head_count'));
  if (queryHeadCount === undefined) throw formatError(file, key('attention.head_count'), 0, 'required key is missing');
  if (queryHeadCount < 1) metadata.fail(key('attention.head_count'), `expected at least 1, got ${queryHeadCount}`);
  const kvHeadCount = perLayerInteger(metadata, key('attention.head_count_kv')) ?? queryHeadCount;
  if (kvHeadCount < 1 || queryHeadCount % kvHeadCount !== 0) {
    metadata.fail(
      key('attention.head_count_kv'),
      `expected a divisor of head_count ${queryHeadCount}, got ${kvHeadCount}`,
    );
  }
  const headDim = metadata.integer(key('attention.key_length')) ?? hiddenSize / queryHeadCount;
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) {
    metadata.fail(key('attention.key_length'), `head dimension must be an even integer, got ${headDim}`);
  }
  const valueLength = metadata.integer(key('attention.value_length'));
  if (valueLength !== undefined && valueLength !== headDim) {
    throw new UnsupportedError(
      `${file}: ${key('attention.value_length')} ${valueLength} differs from the key length ${headDim}`,
    );
  }
  const rotaryDimensions = metadata.integer(key('rope.dimension_count'));
  if (rotaryDimensions !== undefined && rotaryDimensions !== headDim) {
    throw new UnsupportedError(
      `${file}: ${key('rope.dimension_count')} ${rotaryDimensions} (partial rotary) differs from the head dimension ${headDim}`,
    );
  }
  const ffnSize = metadata.requiredInteger(key('feed_forward_length'));
  const maxContext = metadata.requiredInteger(key('context_length'));
  const ropeTheta = shortestFloat32Decimal(metadata.number(key('rope.freq_base')) ?? 10000);
  const rmsNormEps = shortestFloat32Decimal(metadata.number(key('attention.layer_norm_rms_epsilon')) ?? 1e-5);
  for (const [field, value] of [
    [key('rope.freq_base'), ropeTheta],
    [key('attention.layer_norm_rms_epsilon'), rmsNormEps],
  ] as const) {
    if (!(value > 0) || !Number.isFinite(value)) metadata.fail(field, `expected a positive number, got ${value}`);
  }
  let ropeScaling: RopeScaling | null = null;
  const scalingType = metadata.string(key('rope.scaling.type'));
  if (scalingType === 'linear') {
    const factor = metadata.number(key('rope.scaling.factor'));
    if (factor === undefined || !(factor > 0))
      metadata.fail(key('rope.scaling.factor'), `expected a positive factor, got ${factor}`);
    if (factor !== 1) ropeScaling = { type: 'linear', factor: shortestFloat32Decimal(factor) };
  } else if (scalingType !== undefined && scalingType !== 'none') {
    throw new UnsupportedError(
      `${file}: ${key('rope.scaling.type')} "${scalingType}" is not supported: expected none or linear`,
    );
  }
  const explicitVocab = metadata.integer(key('vocab_size'));
  if (explicitVocab !== undefined && explicitVocab !== vocabSize) {
    metadata.fail(key('vocab_size'), `${explicitVocab} differs from the ${vocabSize} rows of token_embd.weight`);
  }
  try {
    return validateModelConfig({
      name: name ?? metadata.string('general.name') ?? architecture,
      layerCount,
      hiddenSize,
      queryHeadCount,
      kvHeadCount,
      headDim,
      ffnSize,
      vocabSize,
      ropeTheta,
      ropeScaling,
      ropeLayout: 'adjacent',
      rmsNormEps,
      // decided by the caller from the tensors (tied when output.weight is absent or identical)
      tieWordEmbeddings: false,
      maxContext,
    });
  } catch (error) {
    if (error instanceof ConfigError) throw formatError(file, 'metadata', 0, error.message);
    throw error;
  }
}
