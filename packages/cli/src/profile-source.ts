/**
 * Resolving `--profile`: a head-load profile JSON file (`fairkv profile` writes one), or DuoAttention
 * gates, `duo:<full_attention_heads.tsv>[:sparsity=S|threshold=T][,context=N][,sink=N][,recent=N]`,
 * turned into a profile by @fairkv/core's `duoAttentionProfile`. The profile must have the model's kv
 * heads; a profile of another depth is tiled over the model's layers (with a warning).
 *
 * @packageDocumentation
 */
import {
  type DuoAttentionSelection,
  duoAttentionProfile,
  type HeadLoadProfile,
  type ModelConfig,
  parseDuoAttentionGates,
  parseHeadLoadProfile,
  tileProfileLayers,
} from '@fairkv/core';
import { InputError, UsageError, withContext } from './cli-error.js';
import { readTextFile } from './files.js';

/** A parsed `duo:` profile spec. */
export interface DuoProfileSpec {
  path: string;
  selection?: DuoAttentionSelection;
  contextLength?: number;
  sinkSize?: number;
  recentSize?: number;
}

const DUO_KEYS = ['context', 'sink', 'recent'] as const;

function integerValue(key: string, value: string, spec: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) {
    throw new UsageError(`--profile ${spec}: ${key}=${value} is not a non-negative integer`);
  }
  return parsed;
}

/**
 * Parses the text after `duo:`. The path may contain `:` (only a trailing `:sparsity=` or
 * `:threshold=` is read as the selection) but not `,`.
 * @throws UsageError naming `--profile` and the bad part (exit 1).
 */
export function parseDuoProfileSpec(spec: string): DuoProfileSpec {
  const [head = '', ...options] = spec.slice('duo:'.length).split(',');
  const selectionMatch = /^(.*):(sparsity|threshold)=([^:]*)$/.exec(head);
  const path = selectionMatch ? selectionMatch[1]! : head;
  if (path.length === 0) throw new UsageError(`--profile ${spec}: expected duo:<full_attention_heads.tsv>`);
  const result: DuoProfileSpec = { path };
  if (selectionMatch) {
    const value = Number(selectionMatch[3]);
    if (selectionMatch[3] === '' || !Number.isFinite(value)) {
      throw new UsageError(`--profile ${spec}: ${selectionMatch[2]}=${selectionMatch[3]} is not a number`);
    }
    result.selection = selectionMatch[2] === 'sparsity' ? { sparsity: value } : { threshold: value };
  }
  for (const option of options) {
    const [key = '', value = ''] = option.split('=', 2);
    if (!(DUO_KEYS as readonly string[]).includes(key) || value === '') {
      throw new UsageError(
        `--profile ${spec}: unknown option "${option}" (expected context=N, sink=N or recent=N after the path)`,
      );
    }
    const parsed = integerValue(key, value, spec);
    if (key === 'context') result.contextLength = parsed;
    else if (key === 'sink') result.sinkSize = parsed;
    else result.recentSize = parsed;
  }
  return result;
}

/** A profile and any warnings from fitting it to the model. */
export interface LoadedProfile {
  profile: HeadLoadProfile;
  warnings: string[];
}

/**
 * Loads `--profile` for `model`.
 * @param defaultContext - context for `duo:` specs without `context=` (the `--context` flag, or the
 *   model's maximum capped at 32768)
 * @throws UsageError for a malformed spec (exit 1); InputError / ValidationError naming the file, or a
 *   kv-head count that differs from the model's (exit 2).
 */
export function loadProfile(spec: string, model: ModelConfig, defaultContext?: number): LoadedProfile {
  let profile: HeadLoadProfile;
  if (spec.startsWith('duo:')) {
    const duo = parseDuoProfileSpec(spec);
    const text = readTextFile(duo.path, '--profile');
    try {
      const gates = parseDuoAttentionGates(text, duo.path);
      profile = duoAttentionProfile(gates, {
        contextLength: duo.contextLength ?? defaultContext ?? Math.min(model.maxContext, 32768),
        ...(duo.selection ? { selection: duo.selection } : {}),
        ...(duo.sinkSize !== undefined ? { sinkSize: duo.sinkSize } : {}),
        ...(duo.recentSize !== undefined ? { recentSize: duo.recentSize } : {}),
        source: duo.path,
      });
    } catch (error) {
      throw withContext(error, `--profile ${duo.path}`);
    }
  } else {
    const text = readTextFile(spec, '--profile');
    try {
      profile = parseHeadLoadProfile(text, spec);
    } catch (error) {
      throw withContext(error, `--profile ${spec}`);
    }
  }
  return fitProfile(profile, model, spec);
}

/**
 * Fits a profile to a model: same kv heads required; layers tiled when the depth differs.
 * @throws InputError naming the profile and both shapes (exit 2).
 */
export function fitProfile(profile: HeadLoadProfile, model: ModelConfig, name: string): LoadedProfile {
  if (profile.kvHeadCount !== model.kvHeadCount) {
    throw new InputError(
      `--profile ${name}: has ${profile.kvHeadCount} kv heads per layer but model ${model.name} has ${model.kvHeadCount}`,
    );
  }
  if (profile.layerCount === model.layerCount) return { profile, warnings: [] };
  return {
    profile: tileProfileLayers(profile, model.layerCount),
    warnings: [
      `profile has ${profile.layerCount} layers, model ${model.name} has ${model.layerCount}: layer rows repeated cyclically`,
    ],
  };
}
