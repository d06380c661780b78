import { ConfigError } from '@fairkv/core';
import type { CompressionPolicy } from './compose-policy.js';
import { type AdaKvOptions, adaKvPolicy } from './policies/ada-kv.js';
import { type DuoAttentionOptions, duoAttentionPolicy } from './policies/duo-attention.js';
import { fullPolicy } from './policies/full.js';
import { type H2oOptions, h2oPolicy } from './policies/h2o.js';
import { type HeadKvOptions, headKvPolicy } from './policies/headkv.js';
import { type PyramidKvOptions, pyramidKvPolicy } from './policies/pyramidkv.js';
import { snapKvPolicy } from './policies/snapkv.js';
import { type StreamingLlmOptions, streamingLlmPolicy } from './policies/streaming-llm.js';
import type { WindowScoringOptions } from './policies/window-scoring-options.js';

/** The built-in policy names, as recorded in head-load profiles (`profile.policy.name`). */
export const POLICY_NAMES = [
  'full',
  'streaming-llm',
  'snapkv',
  'pyramidkv',
  'ada-kv',
  'headkv',
  'duo-attention',
  'h2o',
] as const;

/** A built-in policy name. */
export type PolicyName = (typeof POLICY_NAMES)[number];

/** A policy as data: its name and the options of its factory (what a CLI flag set or a config file holds). */
export type PolicySpec =
  | { name: 'full' }
  | ({ name: 'streaming-llm' } & StreamingLlmOptions)
  | ({ name: 'snapkv' } & WindowScoringOptions)
  | ({ name: 'pyramidkv' } & PyramidKvOptions)
  | ({ name: 'ada-kv' } & AdaKvOptions)
  | ({ name: 'headkv' } & HeadKvOptions)
  | ({ name: 'duo-attention' } & DuoAttentionOptions)
  | ({ name: 'h2o' } & H2oOptions);

/**
 * Builds a built-in policy from a spec, e.g. `createPolicy({ name: 'ada-kv', averageBudget: 2048 })`.
 * Options not given take the factory's defaults (see docs/compression.md).
 * @throws ConfigError for an unknown name (listing the known ones) or invalid options.
 */
export function createPolicy(spec: PolicySpec): CompressionPolicy {
  const { name, ...options } = spec;
  switch (spec.name) {
    case 'full':
      return fullPolicy();
    case 'streaming-llm':
      return streamingLlmPolicy(options as StreamingLlmOptions);
    case 'snapkv':
      return snapKvPolicy(options as WindowScoringOptions);
    case 'pyramidkv':
      return pyramidKvPolicy(options as PyramidKvOptions);
    case 'ada-kv':
      return adaKvPolicy(options as AdaKvOptions);
    case 'headkv':
      return headKvPolicy(options as HeadKvOptions);
    case 'duo-attention':
      return duoAttentionPolicy(options as DuoAttentionOptions);
    case 'h2o':
      return h2oPolicy(options as H2oOptions);
    default: {
      const message = `expected one of ${POLICY_NAMES.join(', ')}, got ${JSON.stringify(name)}`;
      throw new ConfigError(`unknown compression policy: ${message}`, [{ path: '$.name', message }]);
    }
  }
}
