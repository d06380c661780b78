/**
 * `fairkv profile`: measures a model's head-load profile: runs the prefill of every prompt with a
 * compression policy and aggregates the tokens each (layer, kv head) keeps (mean, p90, max) into the
 * HeadLoadProfile document that `fairkv plan --profile` reads.
 *
 * @packageDocumentation
 */
import { CLUSTER_PRESET_NAMES } from '@fairkv/core';
import { type Command, Option } from 'commander';
import { BACKEND_CHOICES, DTYPE_AUTO_HELP, DTYPE_CHOICES } from '../cli-names.js';
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
    .addOption(
      new Option(
        '--backend <name>',
        'where the prefills run: cpu, cuda (the GPUs, a worker thread and NCCL rank each), or auto (cuda when enough GPUs work here, else cpu)',
      )
        .choices(BACKEND_CHOICES)
        .default('cpu'),
    )
    .option(
      '--devices <n>',
      'devices the prefills are sharded over, as standard tensor parallelism (worker threads; GPUs with cuda)',
      integerAtLeast(1),
      1,
    )
    .addOption(
      new Option('--dtype <dtype>', `dtype of the weights and the KV cache during the prefills (${DTYPE_AUTO_HELP})`)
        .choices(DTYPE_CHOICES)
        .default('auto'),
    )
    .addOption(
      new Option(
        '--cluster <preset>',
        'device type the sharding must fit (default: cpu on the cpu backend; the GPUs found with cuda)',
      ).choices(CLUSTER_PRESET_NAMES),
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
    {
      command:
        'fairkv profile --model llama-3.1-8b.gguf --policy ada-kv --budget 1024 --prompts prompts.txt --backend cuda --devices 2 --dtype bf16 --out profile.json',
      description: 'measure the loads of a GPU-sized model on 2 GPUs',
    },
  ]);
}
