import { z } from 'zod';
import { ConfigError, formatIssues } from './errors.js';
import { issuesFromZod } from './json-path.js';

/**
 * RoPE frequency scaling. `llama3` follows Meta's Llama 3.1 scheme (transformers'
 * `_compute_llama3_parameters`); `linear` divides positions by `factor` (position interpolation).
 */
export type RopeScaling =
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    }
  | { type: 'linear'; factor: number };

/**
 * How RoPE rotates a head vector: `adjacent` pairs (x[2i], x[2i+1]) as llama2.c and GGUF files store
 * Llama weights, or `half-split` pairs (x[i], x[i + d/2]) as Hugging Face checkpoints do.
 */
export type RopeLayout = 'adjacent' | 'half-split';

/** Architecture of a Llama-family decoder (Llama 2/3, Mistral): the numbers fairkv plans and runs with. */
export interface ModelConfig {
  /** Human-readable name, e.g. `llama-3.1-8b`. */
  name: string;
  /** Decoder layers. */
  layerCount: number;
  /** Model width (residual stream size). */
  hiddenSize: number;
  /** Attention query heads per layer. */
  queryHeadCount: number;
  /** Key/value heads per layer (GQA when fewer than query heads). */
  kvHeadCount: number;
  /** Dimension of one attention head. */
  headDim: number;
  /** Intermediate size of the SwiGLU MLP. */
  ffnSize: number;
  /** Vocabulary size. */
  vocabSize: number;
  /** RoPE base frequency (`rope_theta`). */
  ropeTheta: number;
  /** RoPE frequency scaling, or null. */
  ropeScaling: RopeScaling | null;
  /** Pair layout of the rotary embedding in the weights this config describes. */
  ropeLayout: RopeLayout;
  /** RMSNorm epsilon. */
  rmsNormEps: number;
  /** Whether the LM head shares the token-embedding matrix. */
  tieWordEmbeddings: boolean;
  /** Maximum context length (`max_position_embeddings`). */
  maxContext: number;
}

const positiveInt = z.number().int().positive();
const positive = z.number().positive();

const ropeScalingSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('llama3'),
    factor: positive,
    lowFreqFactor: positive,
    highFreqFactor: positive,
    originalMaxPositionEmbeddings: positiveInt,
  }),
  z.strictObject({ type: z.literal('linear'), factor: positive }),
]);

/** Zod schema of {@link ModelConfig} (shape only; cross-field rules are in {@link validateModelConfig}). */
export const modelConfigSchema = z.strictObject({
  name: z.string().min(1),
  layerCount: positiveInt,
  hiddenSize: positiveInt,
  queryHeadCount: positiveInt,
  kvHeadCount: positiveInt,
  headDim: positiveInt,
  ffnSize: positiveInt,
  vocabSize: positiveInt,
  ropeTheta: positive,
  ropeScaling: ropeScalingSchema.nullable(),
  ropeLayout: z.enum(['adjacent', 'half-split']),
  rmsNormEps: positive,
  tieWordEmbeddings: z.boolean(),
  maxContext: positiveInt,
});

/**
 * Validates a ModelConfig object (e.g. read back from JSON) and returns it typed.
 * @throws ConfigError listing every violation with its JSON path.
 */
export function validateModelConfig(input: unknown): ModelConfig {
  const parsed = modelConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issues = issuesFromZod(parsed.error, input);
    throw new ConfigError(`invalid model config:\n${formatIssues(issues)}`, issues);
  }
  const config = parsed.data;
  const issues = [];
  if (config.queryHeadCount % config.kvHeadCount !== 0) {
    issues.push({
      path: '$.kvHeadCount',
      message: `must divide queryHeadCount ${config.queryHeadCount} (got ${config.kvHeadCount})`,
    });
  }
  if (config.headDim % 2 !== 0) {
    issues.push({ path: '$.headDim', message: `must be even for RoPE (got ${config.headDim})` });
  }
  if (issues.length > 0) throw new ConfigError(`invalid model config:\n${formatIssues(issues)}`, issues);
  return config;
}

/** Query heads served by one kv head (the GQA group size). */
export function queryGroupSize(config: ModelConfig): number {
  return config.queryHeadCount / config.kvHeadCount;
}

const hfRopeScalingSchema = z.looseObject({
  rope_type: z.string().optional(),
  type: z.string().optional(),
  factor: positive.optional(),
  low_freq_factor: positive.optional(),
  high_freq_factor: positive.optional(),
  original_max_position_embeddings: positiveInt.optional(),
});

const hfConfigSchema = z.looseObject({
  model_type: z.string().optional(),
  architectures: z.array(z.string()).optional(),
  num_hidden_layers: positiveInt,
  hidden_size: positiveInt,
  num_attention_heads: positiveInt,
  num_key_value_heads: positiveInt.optional(),
  head_dim: positiveInt.nullable().optional(),
  intermediate_size: positiveInt,
  vocab_size: positiveInt,
  rope_theta: positive.optional(),
  rope_scaling: hfRopeScalingSchema.nullable().optional(),
  rms_norm_eps: positive.optional(),
  tie_word_embeddings: z.boolean().optional(),
  max_position_embeddings: positiveInt,
});

const SUPPORTED_MODEL_TYPES = ['llama', 'mistral'];

/**
 * Parses a Hugging Face `config.json` of a Llama-family model (`model_type` llama or mistral) into a
 * validated {@link ModelConfig}. Defaults follow transformers' LlamaConfig: `num_key_value_heads` =
 * `num_attention_heads`, `head_dim` = `hidden_size / num_attention_heads`, `rope_theta` 10000,
 * `rms_norm_eps` 1e-6, `tie_word_embeddings` false.
 *
 * @param json - the parsed config.json object
 * @param name - name for the result (defaults to `model_type`)
 * @throws ConfigError naming the JSON path, the value and what was expected.
 */
export function parseHfConfig(json: unknown, name?: string): ModelConfig {
  const parsed = hfConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issues = issuesFromZod(parsed.error, json);
    throw new ConfigError(`invalid Hugging Face config.json:\n${formatIssues(issues)}`, issues);
  }
  const hf = parsed.data;
  if (hf.model_type !== undefined && !SUPPORTED_MODEL_TYPES.includes(hf.model_type)) {
    const issues = [
      { path: '$.model_type', message: `expected one of ${SUPPORTED_MODEL_TYPES.join(', ')} (got "${hf.model_type}")` },
    ];
    throw new ConfigError(`unsupported model: ${formatIssues(issues).trim()}`, issues);
  }
  let ropeScaling: RopeScaling | null = null;
  if (hf.rope_scaling) {
    const kind = hf.rope_scaling.rope_type ?? hf.rope_scaling.type;
    const s = hf.rope_scaling;
    if (kind === 'llama3') {
      const missing = (
        ['factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'] as const
      ).filter((key) => s[key] === undefined);
      if (missing.length > 0) {
        const issues = missing.map((key) => ({
          path: `$.rope_scaling.${key}`,
          message: 'required for rope_type llama3',
        }));
        throw new ConfigError(`invalid Hugging Face config.json:\n${formatIssues(issues)}`, issues);
      }
      ropeScaling = {
        type: 'llama3',
        factor: s.factor!,
        lowFreqFactor: s.low_freq_factor!,
        highFreqFactor: s.high_freq_factor!,
        originalMaxPositionEmbeddings: s.original_max_position_embeddings!,
      };
    } else if (kind === 'linear') {
      if (s.factor === undefined) {
        const issues = [{ path: '$.rope_scaling.factor', message: 'required for rope_type linear' }];
        throw new ConfigError(`invalid Hugging Face config.json:\n${formatIssues(issues)}`, issues);
      }
      ropeScaling = { type: 'linear', factor: s.factor };
    } else if (kind !== 'default') {
      const issues = [
        {
          path: '$.rope_scaling.rope_type',
          message: `expected llama3, linear or default (got ${JSON.stringify(kind)})`,
        },
      ];
      throw new ConfigError(`unsupported RoPE scaling:\n${formatIssues(issues)}`, issues);
    }
  }
  return validateModelConfig({
    name: name ?? hf.model_type ?? 'llama',
    layerCount: hf.num_hidden_layers,
    hiddenSize: hf.hidden_size,
    queryHeadCount: hf.num_attention_heads,
    kvHeadCount: hf.num_key_value_heads ?? hf.num_attention_heads,
    headDim: hf.head_dim ?? hf.hidden_size / hf.num_attention_heads,
    ffnSize: hf.intermediate_size,
    vocabSize: hf.vocab_size,
    ropeTheta: hf.rope_theta ?? 10000,
    ropeScaling,
    ropeLayout: 'half-split',
    rmsNormEps: hf.rms_norm_eps ?? 1e-6,
    tieWordEmbeddings: hf.tie_word_embeddings ?? false,
    maxContext: hf.max_position_embeddings,
  });
}
