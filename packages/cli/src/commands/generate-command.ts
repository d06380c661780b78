/**
 * `fairkv generate`: generates text from a prompt on one or several CPU devices or GPUs (a worker thread each),
 * under a compression policy and a placement plan, streaming the text; then reports per-device KV
 * memory and tokens per second.
 *
 * @packageDocumentation
 */
import { CLUSTER_PRESET_NAMES } from '@fairkv/core';
import { type Command, Option } from 'commander';
import { BACKEND_CHOICES, DTYPE_AUTO_HELP, DTYPE_CHOICES, SOLVER_NAMES } from '../cli-names.js';
import { addExamples } from '../command-help.js';
import { integer, integerAtLeast, numberInRange } from '../option-parsers.js';
import { addPolicyOptions } from '../policy-flags.js';
import type { GenerateFlags } from './generate-action.js';

/** Registers `fairkv generate` on the program. */
export function registerGenerateCommand(program: Command): Command {
  const command = program
    .command('generate')
    .summary('generate text on sharded CPU devices or GPUs under a compression policy')
    .description(
      'Generate text from a prompt, streaming it to stdout; with --devices the model is sharded over CPU ' +
        'worker threads, or GPUs with --backend cuda, by a placement plan (--plan file, or --solver with ' +
        '--profile or a profile measured on the prompt). At the end, per-device KV memory and tokens/s go ' +
        'to stderr.',
    )
    .option(
      '--model <path>',
      'GGUF file or Hugging Face folder (default: $FAIRKV_MODEL, else the embedded random-weight model)',
    )
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--max-tokens <n>', 'most tokens to generate', integerAtLeast(1), 64)
    .option('--temperature <t>', 'sampling temperature (0: greedy)', numberInRange(0, Number.POSITIVE_INFINITY), 0)
    .option('--top-p <p>', 'nucleus sampling mass', numberInRange(0, 1, true), 1)
    .option('--seed <s>', 'sampling seed', integer, 0)
    .option('--stop <text...>', 'stop when the text contains one of these');
  addPolicyOptions(command, 'full')
    .option(
      '--devices <n>',
      "devices (worker threads; GPUs with --backend cuda); default 1, or the plan's",
      integerAtLeast(1),
    )
    .option('--plan <plan.json>', 'placement plan to shard the model by')
    .addOption(new Option('--solver <name>', 'solve a plan for --devices with this solver').choices(SOLVER_NAMES))
    .option(
      '--profile <spec>',
      'head-load profile for --solver (default: measured on the prompt with the policy, on the --backend devices)',
    )
    .addOption(
      new Option(
        '--backend <name>',
        'compute backend: cpu (a worker thread per device), cuda (a worker thread, CUDA backend and NCCL rank per GPU), or auto (cuda when enough GPUs work here, else cpu)',
      )
        .choices(BACKEND_CHOICES)
        .default('auto'),
    )
    .addOption(
      new Option(
        '--cluster <preset>',
        'device type a solved plan must fit and is timed for (default: cpu on the cpu backend; the GPUs found with cuda)',
      ).choices(CLUSTER_PRESET_NAMES),
    )
    .addOption(
      new Option('--dtype <dtype>', `dtype of the weights and the KV cache on the devices (${DTYPE_AUTO_HELP})`)
        .choices(DTYPE_CHOICES)
        .default('auto'),
    )
    .option(
      '--no-graph-steps',
      'run decode steps one operation at a time, not as recorded graph steps (CUDA graphs on cuda; same tokens)',
    )
    .option('--json', 'print one JSON object (text, tokens, per-device figures) instead of streaming')
    .action(async (flags: GenerateFlags) => (await import('./generate-action.js')).runGenerate(flags));
  return addExamples(command, [
    {
      command: 'fairkv generate --model stories260K.gguf --prompt "Once upon a time" --max-tokens 40',
      description: 'greedy generation on one CPU device',
    },
    {
      command: 'fairkv generate --prompt "Once upon a time" --policy ada-kv --budget 16 --devices 2 --solver fair-copy',
      description: 'Ada-KV compression on 2 CPU devices with a Fair-Copying plan measured on the prompt',
    },
    {
      command: 'fairkv generate --model model.gguf --prompt "Hello" --plan plan.json --temperature 0.8 --seed 7',
      description: 'sample with a plan written by `fairkv plan`',
    },
  ]);
}
