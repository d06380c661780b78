import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type ClusterSpec,
  createCluster,
  duoAttentionProfile,
  getModelPreset,
  type HeadLoadProfile,
  type ModelConfig,
  parseDuoAttentionGates,
  tileProfileLayers,
} from '@fairkv/core';

import { syntheticHeavyTailedProfile } from '../synthetic-profile.js';

/** `../shared` beside the checkout (DESIGN.md): real DuoAttention gate files; tests skip when it is missing. */
const SHARED_DIR = fileURLToPath(new URL('../../../../../shared/', import.meta.url));

/** The three DuoAttention gate files shipped in ../shared, by model folder name. */
export const DUO_ATTENTION_MODELS = [
  'Llama-3-8B-Instruct-Gradient-1048k',
  'Meta-Llama-3.1-8B-Instruct',
  'Mistral-7B-Instruct-v0.2',
] as const;

function duoAttentionFile(model: string): string {
  return `${SHARED_DIR}profiles/duo-attention/${model}/full_attention_heads.tsv`;
}

/** Whether ../shared/profiles is present. */
export const hasSharedProfiles = DUO_ATTENTION_MODELS.every((model) => existsSync(duoAttentionFile(model)));

export const PRESETS = [
  'llama-3.1-8b',
  'llama-3.3-70b',
  'mistral-small-24b-2501',
  'mistral-7b-v0.2',
  'stories260k',
] as const;

/** One test fixture: a model, a head-load profile and a label. */
export interface ProfileFixture {
  label: string;
  model: ModelConfig;
  profile: HeadLoadProfile;
}

/**
 * Every preset with every DuoAttention gate file (sparsity 0.5 and threshold 0.5, rows tiled to the
 * model's depth; only for models with 8 kv heads like the gate files) and a synthetic heavy-tailed profile.
 */
export function profileFixtures(contextLength = 32768): ProfileFixture[] {
  const fixtures: ProfileFixture[] = [];
  for (const name of PRESETS) {
    const model = getModelPreset(name);
    const context = Math.min(contextLength, model.maxContext);
    fixtures.push({
      label: `${name} synthetic`,
      model,
      profile: syntheticHeavyTailedProfile({
        layerCount: model.layerCount,
        kvHeadCount: model.kvHeadCount,
        contextLength: context,
        seed: 7,
      }),
    });
    if (!hasSharedProfiles) continue;
    for (const gatesModel of DUO_ATTENTION_MODELS) {
      const gates = parseDuoAttentionGates(readFileSync(duoAttentionFile(gatesModel), 'utf8'));
      if (gates[0]!.length !== model.kvHeadCount) continue;
      for (const selection of [{ sparsity: 0.5 }, { threshold: 0.5 }]) {
        const profile = tileProfileLayers(
          duoAttentionProfile(gates, { selection, contextLength: context }),
          model.layerCount,
        );
        fixtures.push({ label: `${name} duo ${gatesModel} ${JSON.stringify(selection)}`, model, profile });
      }
    }
  }
  return fixtures;
}

/** A small Llama-shaped model for property tests. */
export function tinyModel(layerCount: number, kvHeadCount: number, group = 2): ModelConfig {
  return {
    ...getModelPreset('llama-3.1-8b'),
    name: `tiny-${layerCount}x${kvHeadCount}`,
    layerCount,
    kvHeadCount,
    queryHeadCount: kvHeadCount * group,
    hiddenSize: 512,
    headDim: 64,
    ffnSize: 1024,
    vocabSize: 1000,
  };
}

/** An H100 cluster of `deviceCount` devices (up to 8). */
export function h100(deviceCount: number): ClusterSpec {
  return createCluster('h100-sxm-80g', deviceCount);
}

/** Devices of the given bandwidths (bytes/s) and `memoryBytes` each, on a 1e11 B/s link: property tests. */
export function bandwidthCluster(bandwidths: number[], memoryBytes = 1e12): ClusterSpec {
  return {
    name: 'test',
    devices: bandwidths.map((bw) => ({ name: `T${bw}`, memoryBytes, memoryBandwidthBytesPerSecond: bw })),
    interconnect: { name: 'link', allReduceBandwidthBytesPerSecond: 1e11, latencySeconds: 1e-6 },
  };
}

/** A profile whose mean kept tokens are `tokens[layer][head]` (one sample, 100,000-token context). */
export function profileOfTokens(tokens: number[][]): HeadLoadProfile {
  return {
    version: 1,
    layerCount: tokens.length,
    kvHeadCount: tokens[0]!.length,
    contextLength: 100_000,
    mean: tokens,
    sampleCount: 1,
    policy: { name: 'test', settings: {} },
    source: 'fast-check',
  };
}
