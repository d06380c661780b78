/**
 * The compression-policy flags shared by `profile`, `generate`, `bench` and `demo`.
 *
 * @packageDocumentation
 */
import { type Command, Option } from 'commander';
import { POLICY_NAMES } from './cli-names.js';
import { integerAtLeast } from './option-parsers.js';

/** Adds `--policy`, `--budget`, `--window`, `--sink`, `--gates` and `--importance` to a command. */
export function addPolicyOptions(command: Command, defaultPolicy?: string): Command {
  const policy = new Option('--policy <name>', 'KV compression policy applied after prefill').choices(POLICY_NAMES);
  if (defaultPolicy) policy.default(defaultPolicy);
  return command
    .addOption(policy)
    .option(
      '--budget <tokens>',
      'average tokens kept per kv head (snapkv, pyramidkv, ada-kv, headkv; sink + recent for streaming-llm and duo-attention; heavy + recent for h2o)',
      integerAtLeast(1),
    )
    .option(
      '--window <tokens>',
      'observation window of the scoring policies (default min(32, budget/2))',
      integerAtLeast(1),
    )
    .option(
      '--sink <tokens>',
      'attention-sink tokens (streaming-llm default 4, duo-attention default 128)',
      integerAtLeast(0),
    )
    .option('--gates <tsv>', "duo-attention: DuoAttention full_attention_heads.tsv with the model's layers x kv heads")
    .option('--importance <file>', 'headkv: HeadKV head-importance JSON, or a head-load profile JSON');
}
