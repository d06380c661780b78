/**
 * `fairkv profile`: measures a model's head-load profile: runs the prefill of every prompt with a
 * compression policy and aggregates the tokens each (layer, kv head) keeps (mean, p90, max) into the
 * HeadLoadProfile document that `fairkv plan --profile` reads.
 *
 * @packageDocumentation
 */
import type { Command } from 'commander';
import { addExamples } from '../command-help.js';
import { integerAtLeast } from '../option-parsers.js';
import { addPolicyOptions } from '../policy-flags.js';
import type { ProfileFlags } from './profile-action.js';

/** Registers `fairkv profile` on the program. */
export function registerProfileCommand(program: Command): Command {
  const command = program
    .command('profile')
    .summary("measure a model's per-head KV load under a compression policy")
    .description(
      'Run the prefill of every prompt with a compression policy and write the head-load profile: the ' +
        'tokens each (layer, kv head) keeps, as mean, p90 and max over the prompts. Without --out the ' +
        'profile JSON goes to stdout.',
    )
    .option(
      '--model <path>',
      'GGUF file or Hugging Face folder (default: $FAIRKV_MODEL, else the embedded random-weight model)',
    );
  addPolicyOptions(command, 'full')
    .requiredOption('--prompts <file>', 'one prompt per line, or JSON Lines of strings or {"prompt": ...} objects')
    .option('--out <profile.json>', 'write the profile here (default: stdout)')
    .option(
      '--new-tokens <n>',
      'tokens each request generates after its prompt, added to every head',
      integerAtLeast(0),
      0,
    )
    .option(
      '--context <n>',
      'context recorded in the profile (default: longest prompt + new tokens)',
      integerAtLeast(1),
    )
    .option('--json', 'print the profile JSON even with --out')
    .action(async (flags: ProfileFlags) => (await import('./profile-action.js')).runProfile(flags));
  return addExamples(command, [
    {
      command:
        'fairkv profile --model stories260K.gguf --policy ada-kv --budget 32 --prompts prompts.txt --out profile.json',
      description: 'measure Ada-KV head loads of stories260K on a prompt file',
    },
    {
      command: 'fairkv profile --policy snapkv --budget 16 --prompts prompts.jsonl --new-tokens 64 > profile.json',
      description: 'profile the default model; every head also holds 64 generated tokens',
    },
  ]);
}
