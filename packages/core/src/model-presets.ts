import { ConfigError } from './errors.js';
import { type ModelConfig, parseHfConfig, type RopeLayout } from './model-config.js';

/**
 * Model presets, kept as the public Hugging Face `config.json` numbers of each model (only the fields
 * fairkv reads) and parsed by {@link parseHfConfig}, so a preset and a user's config.json go through
 * the same code.
 */
const PRESET_CONFIGS = {
  /** meta-llama/Llama-3.1-8B(-Instruct) config.json. */
  'llama-3.1-8b': {
    hf: {
      model_type: 'llama',
      num_hidden_layers: 32,
      hidden_size: 4096,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      head_dim: 128,
      intermediate_size: 14336,
      vocab_size: 128256,
      rope_theta: 500000.0,
      rope_scaling: {
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192,
        rope_type: 'llama3',
      },
      rms_norm_eps: 1e-5,
      tie_word_embeddings: false,
      max_position_embeddings: 131072,
    },
  },
  /** meta-llama/Llama-3.3-70B-Instruct config.json. */
  'llama-3.3-70b': {
    hf: {
      model_type: 'llama',
      num_hidden_layers: 80,
      hidden_size: 8192,
      num_attention_heads: 64,
      num_key_value_heads: 8,
      head_dim: 128,
      intermediate_size: 28672,
      vocab_size: 128256,
      rope_theta: 500000.0,
      rope_scaling: {
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192,
        rope_type: 'llama3',
      },
      rms_norm_eps: 1e-5,
      tie_word_embeddings: false,
      max_position_embeddings: 131072,
    },
  },
  /** mistralai/Mistral-Small-24B-Instruct-2501 config.json (head_dim 128 with hidden 5120). */
  'mistral-small-24b-2501': {
    hf: {
      model_type: 'mistral',
      num_hidden_layers: 40,
      hidden_size: 5120,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      head_dim: 128,
      intermediate_size: 32768,
      vocab_size: 131072,
      rope_theta: 100000000.0,
      rms_norm_eps: 1e-5,
      tie_word_embeddings: false,
      max_position_embeddings: 32768,
    },
  },
  /** mistralai/Mistral-7B-Instruct-v0.2 config.json (no sliding window). */
  'mistral-7b-v0.2': {
    hf: {
      model_type: 'mistral',
      num_hidden_layers: 32,
      hidden_size: 4096,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      intermediate_size: 14336,
      vocab_size: 32000,
      rope_theta: 1000000.0,
      rms_norm_eps: 1e-5,
      tie_word_embeddings: false,
      max_position_embeddings: 32768,
    },
  },
  /** karpathy/tinyllamas stories260K (as in ../shared/models/stories260K.gguf; GGUF weights rotate adjacent pairs). */
  stories260k: {
    hf: {
      model_type: 'llama',
      num_hidden_layers: 5,
      hidden_size: 64,
      num_attention_heads: 8,
      num_key_value_heads: 4,
      intermediate_size: 172,
      vocab_size: 512,
      rope_theta: 10000.0,
      rms_norm_eps: 1e-5,
      tie_word_embeddings: true,
      max_position_embeddings: 512,
    },
    ropeLayout: 'adjacent' as RopeLayout,
  },
} as const;

/** Names of the built-in model presets. */
export type ModelPresetName = keyof typeof PRESET_CONFIGS;

/** Every built-in model preset name. */
export const MODEL_PRESET_NAMES = Object.keys(PRESET_CONFIGS) as ModelPresetName[];

/** Whether `name` is a built-in model preset. */
export function isModelPresetName(name: string): name is ModelPresetName {
  return Object.hasOwn(PRESET_CONFIGS, name);
}

/**
 * Returns a fresh copy of a built-in model preset.
 * @throws ConfigError when the name is unknown (the message lists the presets).
 */
export function getModelPreset(name: string): ModelConfig {
  if (!isModelPresetName(name)) {
    throw new ConfigError(`unknown model preset "${name}": expected one of ${MODEL_PRESET_NAMES.join(', ')}`, [
      { path: '$', message: `unknown model preset "${name}"` },
    ]);
  }
  const preset = PRESET_CONFIGS[name];
  const config = parseHfConfig(preset.hf, name);
  return 'ropeLayout' in preset ? { ...config, ropeLayout: preset.ropeLayout } : config;
}
