/**
 * `fairkv demo` (what `npm start` runs): the FairKV story end to end on this machine. A model (the
 * embedded random-weight default, or `--model` / `FAIRKV_MODEL`) generates on several CPU devices
 * (worker threads) under a compression policy, first with the contiguous tensor-parallel plan, then
 * with a Fair-Copying plan solved from the head loads the first run measured; per-device KV memory
 * and tokens/s are shown for both.
 *
 * @packageDocumentation
 */
import type { Command } from 'commander';
import { addExamples } from '../command-help.js';
import { integerAtLeast } from '../option-parsers.js';
import { addPolicyOptions } from '../policy-flags.js';
import type { DemoFlags } from './demo-action.js';

/** Registers `fairkv demo` on the program. */
export function registerDemoCommand(program: Command): Command {
  const command = program
    .command('demo')
    .summary('generate on several CPU devices with a contiguous and a fair-copy plan (npm start)')
    .description(
      'The FairKV demonstration: the model generates on several CPU devices (worker threads) under a ' +
        'compression policy, first with the contiguous tensor-parallel plan, then with a Fair-Copying plan ' +
        'solved from the head loads the first run measured; per-device KV memory and tokens/s for both. ' +
        'The default model is generated on first use and has RANDOM weights; --model or FAIRKV_MODEL pick a ' +
        'real one. The default policy is DuoAttention with synthetic seeded gates (sink 4, budget 20).',
    )
    .option(
      '--model <path>',
      'GGUF file or Hugging Face folder (default: $FAIRKV_MODEL, else the embedded random-weight model)',
    )
    .option('--devices <n>', 'CPU devices (worker threads)', integerAtLeast(2), 4)
    .option('--requests <n>', 'requests generated together', integerAtLeast(1), 6)
    .option('--max-tokens <n>', 'tokens each request generates', integerAtLeast(1), 24);
  addPolicyOptions(command, 'duo-attention')
    .option('--json', 'print one JSON object with both runs instead of the report')
    .action(async (flags: DemoFlags) => (await import('./demo-action.js')).runDemo(flags));
  return addExamples(command, [
    { command: 'fairkv demo', description: 'the default model, 4 devices, DuoAttention with synthetic gates' },
    {
      command: 'FAIRKV_MODEL=../shared/models/stories260K.gguf fairkv demo --devices 2',
      description: 'a real model (stories260K) on 2 devices: readable text',
    },
    { command: 'fairkv demo --policy ada-kv --budget 16 --requests 8', description: 'Ada-KV compression instead' },
  ]);
}
