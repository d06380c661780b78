import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** `../shared` beside the checkout (DESIGN.md): real profiles; tests skip when it is missing. */
export const SHARED_DIR = fileURLToPath(new URL('../../../../../shared/', import.meta.url));

/** The DuoAttention gate files shipped in ../shared, by model folder name. */
export const DUO_ATTENTION_MODELS = [
  'Llama-3-8B-Instruct-Gradient-1048k',
  'Meta-Llama-3.1-8B-Instruct',
  'Mistral-7B-Instruct-v0.2',
] as const;

export function duoAttentionFile(model: string): string {
  return `${SHARED_DIR}profiles/duo-attention/${model}/full_attention_heads.tsv`;
}

export const hasSharedProfiles = DUO_ATTENTION_MODELS.every((model) => existsSync(duoAttentionFile(model)));
