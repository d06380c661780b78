/**
 * `--policy <name>` with `--budget`, `--window`, `--sink`, `--gates` and `--importance` mapped onto
 * @fairkv/compress's policy factories (docs/compression.md has each policy's source and defaults).
 * A flag a policy does not use is a usage error, as is a missing one it needs (exit 1); values the
 * policy rejects are input errors (exit 2).
 *
 * @packageDocumentation
 */
import {
  adaKvPolicy,
  type CompressionPolicy,
  duoAttentionPolicy,
  fullPolicy,
  h2oPolicy,
  headKvPolicy,
  importanceFromProfile,
  parseHeadKvImportance,
  pyramidKvPolicy,
  snapKvPolicy,
  streamingLlmPolicy,
} from '@fairkv/compress';
import { type ModelConfig, parseDuoAttentionGates, parseHeadLoadProfile } from '@fairkv/core';
import { InputError, UsageError, withContext } from './cli-error.js';
import { POLICY_NAMES, type PolicyName } from './cli-names.js';
import { readTextFile } from './files.js';

export { POLICY_NAMES, type PolicyName } from './cli-names.js';

/** The policy flags as commander parsed them. */
export interface PolicyFlags {
  policy?: string;
  budget?: number;
  window?: number;
  sink?: number;
  gates?: string;
  importance?: string;
}

/** Flags each policy reads (besides `--policy`). */
const USES: Record<PolicyName, (keyof PolicyFlags)[]> = {
  full: [],
  'streaming-llm': ['budget', 'sink'],
  snapkv: ['budget', 'window'],
  pyramidkv: ['budget', 'window'],
  'ada-kv': ['budget', 'window'],
  headkv: ['budget', 'window', 'importance'],
  'duo-attention': ['budget', 'sink', 'gates'],
  h2o: ['budget'],
};

const NEEDS: Partial<Record<PolicyName, (keyof PolicyFlags)[]>> = {
  snapkv: ['budget'],
  pyramidkv: ['budget'],
  'ada-kv': ['budget'],
  headkv: ['budget', 'importance'],
  'duo-attention': ['gates'],
};

const FLAG_HINT: Record<string, string> = {
  budget: '--budget <tokens>',
  window: '--window <tokens>',
  sink: '--sink <tokens>',
  gates: '--gates <full_attention_heads.tsv>',
  importance: '--importance <file>',
};

/** Observation window when `--window` is not given: 32 (the references' default), at most half the budget. */
export function defaultWindow(budget: number): number {
  return Math.max(1, Math.min(32, Math.floor(budget / 2)));
}

/** Gates of `--gates`, checked against the model's shape. */
export function readGates(path: string, model: ModelConfig): number[][] {
  let gates: number[][];
  try {
    gates = parseDuoAttentionGates(readTextFile(path, '--gates'), path);
  } catch (error) {
    throw withContext(error, `--gates ${path}`);
  }
  const columns = gates[0]?.length ?? 0;
  if (gates.length !== model.layerCount || columns !== model.kvHeadCount) {
    throw new InputError(
      `--gates ${path}: ${gates.length} layers x ${columns} kv heads, but model ${model.name} has ${model.layerCount} x ${model.kvHeadCount}`,
    );
  }
  return gates;
}

function readImportance(path: string): number[][] {
  const text = readTextFile(path, '--importance');
  try {
    const json = JSON.parse(text) as Record<string, unknown>;
    if (json && typeof json === 'object' && 'mean' in json && 'version' in json) {
      return importanceFromProfile(parseHeadLoadProfile(text, path));
    }
    return parseHeadKvImportance(text, path);
  } catch (error) {
    if (error instanceof SyntaxError) throw new InputError(`--importance ${path}: not valid JSON (${error.message})`);
    throw withContext(error, `--importance ${path}`);
  }
}

/**
 * Checks the flags against the policy: every flag given must be one the policy uses, and every flag
 * it needs must be given.
 * @throws UsageError naming the flag (exit 1).
 */
export function checkPolicyFlags(name: PolicyName, flags: PolicyFlags, provided: (keyof PolicyFlags)[] = []): void {
  for (const key of ['budget', 'window', 'sink', 'gates', 'importance'] as const) {
    if (flags[key] !== undefined && !USES[name].includes(key)) {
      throw new UsageError(`--${key} does not apply to --policy ${name}`);
    }
  }
  for (const key of NEEDS[name] ?? []) {
    if (flags[key] === undefined && !provided.includes(key)) {
      throw new UsageError(`--policy ${name} needs ${FLAG_HINT[key]}`);
    }
  }
}

/**
 * Builds the compression policy the flags describe. `gates` may be supplied by the caller (the demo's
 * synthetic gates) instead of `--gates`.
 * @throws UsageError (exit 1) or InputError / ConfigError naming the flag (exit 2).
 */
export function createPolicy(flags: PolicyFlags, model: ModelConfig, suppliedGates?: number[][]): CompressionPolicy {
  const name = (flags.policy ?? 'full') as PolicyName;
  if (!(POLICY_NAMES as readonly string[]).includes(name)) {
    throw new UsageError(`--policy ${name}: unknown policy (expected one of ${POLICY_NAMES.join(', ')})`);
  }
  checkPolicyFlags(name, flags, suppliedGates ? ['gates'] : []);
  const { budget, sink } = flags;
  const window = flags.window ?? (budget !== undefined ? defaultWindow(budget) : undefined);
  try {
    switch (name) {
      case 'full':
        return fullPolicy();
      case 'streaming-llm': {
        const sinkSize = sink ?? 4;
        if (budget !== undefined && budget <= sinkSize) {
          throw new InputError(`--budget ${budget}: must exceed the ${sinkSize} sink tokens of streaming-llm`);
        }
        return streamingLlmPolicy({ sinkSize, ...(budget !== undefined ? { recentSize: budget - sinkSize } : {}) });
      }
      case 'snapkv':
        return snapKvPolicy({ averageBudget: budget!, windowSize: window! });
      case 'pyramidkv':
        return pyramidKvPolicy({ averageBudget: budget!, windowSize: window! });
      case 'ada-kv':
        return adaKvPolicy({ averageBudget: budget!, windowSize: window! });
      case 'headkv':
        return headKvPolicy({
          averageBudget: budget!,
          windowSize: window!,
          importance: readImportance(flags.importance!),
          importanceSource: flags.importance!,
        });
      case 'duo-attention': {
        const sinkSize = sink ?? 128;
        if (budget !== undefined && budget <= sinkSize) {
          throw new InputError(`--budget ${budget}: must exceed the ${sinkSize} sink tokens of duo-attention`);
        }
        const gates = suppliedGates ?? readGates(flags.gates!, model);
        return duoAttentionPolicy({
          gates,
          sinkSize,
          recentSize: budget !== undefined ? budget - sinkSize : 256,
          gatesSource: flags.gates ?? 'SYNTHETIC seeded, not trained',
        });
      }
      case 'h2o': {
        if (budget === undefined) return h2oPolicy();
        const heavySize = Math.floor(budget / 2);
        return h2oPolicy({ heavySize, recentSize: budget - heavySize });
      }
    }
  } catch (error) {
    if (error instanceof InputError || error instanceof UsageError) throw error;
    throw withContext(error, `--policy ${name}`);
  }
}

/** `ada-kv (averageBudget 16, windowSize 8)`: the policy and its main settings, for one output line. */
export function describePolicy(policy: CompressionPolicy): string {
  const keys = ['averageBudget', 'windowSize', 'sinkSize', 'recentSize', 'heavySize', 'threshold', 'sparsity', 'gates'];
  const settings = keys
    .filter((key) => policy.settings[key] !== undefined)
    .map((key) => `${key} ${String(policy.settings[key])}`);
  return settings.length > 0 ? `${policy.name} (${settings.join(', ')})` : policy.name;
}
