/**
 * Canonical weight names of a Llama-family model and where GGUF (llama.cpp `LLM_ARCH_LLAMA` tensor
 * names) and Hugging Face (transformers `LlamaForCausalLM` state dict) store each one.
 *
 * Every matrix is `[outFeatures, inFeatures]`, row-major (PyTorch `nn.Linear.weight`; GGUF `ne`
 * reversed): `y[o] = sum_i W[o * inFeatures + i] * x[i]`.
 *
 * | canonical name                 | shape                                   |
 * | ------------------------------ | --------------------------------------- |
 * | `tokenEmbedding`               | `[vocabSize, hiddenSize]` (row t = token t) |
 * | `layers.{i}.attentionNorm`     | `[hiddenSize]`                          |
 * | `layers.{i}.attention.wq`      | `[queryHeadCount * headDim, hiddenSize]` (rows of query head h: `h*headDim ..`) |
 * | `layers.{i}.attention.wk`      | `[kvHeadCount * headDim, hiddenSize]`   |
 * | `layers.{i}.attention.wv`      | `[kvHeadCount * headDim, hiddenSize]`   |
 * | `layers.{i}.attention.wo`      | `[hiddenSize, queryHeadCount * headDim]` (columns of query head h) |
 * | `layers.{i}.feedForwardNorm`   | `[hiddenSize]`                          |
 * | `layers.{i}.feedForward.gate`  | `[ffnSize, hiddenSize]` (w1, SiLU branch) |
 * | `layers.{i}.feedForward.up`    | `[ffnSize, hiddenSize]` (w3)            |
 * | `layers.{i}.feedForward.down`  | `[hiddenSize, ffnSize]` (w2)            |
 * | `outputNorm`                   | `[hiddenSize]`                          |
 * | `output`                       | `[vocabSize, hiddenSize]` (the embedding when tied) |
 *
 * Query head h uses kv head `floor(h / (queryHeadCount / kvHeadCount))` (consecutive query heads
 * share a kv head, as in llama2.c and transformers' `repeat_kv`).
 *
 * @packageDocumentation
 */
import type { ModelConfig } from '@fairkv/core';

/** The per-layer weights, by their name inside `layers.{i}.`. */
export const LAYER_WEIGHT_KINDS = [
  'attentionNorm',
  'attention.wq',
  'attention.wk',
  'attention.wv',
  'attention.wo',
  'feedForwardNorm',
  'feedForward.gate',
  'feedForward.up',
  'feedForward.down',
] as const;

/** One per-layer weight. */
export type LayerWeightKind = (typeof LAYER_WEIGHT_KINDS)[number];

/** Weights outside the layers. */
export const MODEL_WEIGHT_NAMES = ['tokenEmbedding', 'outputNorm', 'output'] as const;

/** `layers.{layer}.{kind}`. */
export function layerWeightName(layer: number, kind: LayerWeightKind): string {
  return `layers.${layer}.${kind}`;
}

/**
 * Every canonical weight name of a model, embedding first, then layer by layer, then the head,
 * generated lazily (a corrupt layer count cannot make it allocate).
 */
export function* iterateCanonicalWeightNames(config: ModelConfig): Generator<string> {
  yield 'tokenEmbedding';
  for (let layer = 0; layer < config.layerCount; layer++) {
    for (const kind of LAYER_WEIGHT_KINDS) yield layerWeightName(layer, kind);
  }
  yield 'outputNorm';
  yield 'output';
}

/** Every canonical weight name of a model, embedding first, then layer by layer, then the head. */
export function canonicalWeightNames(config: ModelConfig): string[] {
  return [...iterateCanonicalWeightNames(config)];
}

/** The shape a canonical weight must have under `config`, or undefined for an unknown name. */
export function expectedWeightShape(config: ModelConfig, name: string): number[] | undefined {
  const { hiddenSize, vocabSize, ffnSize, headDim } = config;
  const queryWidth = config.queryHeadCount * headDim;
  const kvWidth = config.kvHeadCount * headDim;
  if (name === 'tokenEmbedding' || name === 'output') return [vocabSize, hiddenSize];
  if (name === 'outputNorm') return [hiddenSize];
  const match = /^layers\.(\d+)\.(.+)$/.exec(name);
  if (!match || Number(match[1]) >= config.layerCount) return undefined;
  const shapes: Record<LayerWeightKind, number[]> = {
    attentionNorm: [hiddenSize],
    'attention.wq': [queryWidth, hiddenSize],
    'attention.wk': [kvWidth, hiddenSize],
    'attention.wv': [kvWidth, hiddenSize],
    'attention.wo': [hiddenSize, queryWidth],
    feedForwardNorm: [hiddenSize],
    'feedForward.gate': [ffnSize, hiddenSize],
    'feedForward.up': [ffnSize, hiddenSize],
    'feedForward.down': [hiddenSize, ffnSize],
  };
  return shapes[match[2] as LayerWeightKind];
}

const GGUF_LAYER_NAMES: Record<LayerWeightKind, string> = {
  attentionNorm: 'attn_norm',
  'attention.wq': 'attn_q',
  'attention.wk': 'attn_k',
  'attention.wv': 'attn_v',
  'attention.wo': 'attn_output',
  feedForwardNorm: 'ffn_norm',
  'feedForward.gate': 'ffn_gate',
  'feedForward.up': 'ffn_up',
  'feedForward.down': 'ffn_down',
};

const HF_LAYER_NAMES: Record<LayerWeightKind, string> = {
  attentionNorm: 'input_layernorm',
  'attention.wq': 'self_attn.q_proj',
  'attention.wk': 'self_attn.k_proj',
  'attention.wv': 'self_attn.v_proj',
  'attention.wo': 'self_attn.o_proj',
  feedForwardNorm: 'post_attention_layernorm',
  'feedForward.gate': 'mlp.gate_proj',
  'feedForward.up': 'mlp.up_proj',
  'feedForward.down': 'mlp.down_proj',
};

function mapName(
  name: string,
  layerName: (layer: string, kind: LayerWeightKind) => string,
  global: Record<string, string>,
) {
  const match = /^layers\.(\d+)\.(.+)$/.exec(name);
  if (match) return layerName(match[1]!, match[2] as LayerWeightKind);
  return global[name];
}

/** The GGUF tensor name of a canonical weight (`layers.0.attention.wq` -> `blk.0.attn_q.weight`). */
export function ggufTensorName(name: string): string | undefined {
  return mapName(name, (layer, kind) => `blk.${layer}.${GGUF_LAYER_NAMES[kind]}.weight`, {
    tokenEmbedding: 'token_embd.weight',
    outputNorm: 'output_norm.weight',
    output: 'output.weight',
  });
}

/** The Hugging Face tensor name of a canonical weight (`layers.0.attention.wq` -> `model.layers.0.self_attn.q_proj.weight`). */
export function huggingFaceTensorName(name: string): string | undefined {
  return mapName(name, (layer, kind) => `model.layers.${layer}.${HF_LAYER_NAMES[kind]}.weight`, {
    tokenEmbedding: 'model.embed_tokens.weight',
    outputNorm: 'model.norm.weight',
    output: 'lm_head.weight',
  });
}
