/**
 * `fairkv inspect`: which backends work here, a model's architecture and sizes, a plan's validation
 * report and per-device summary.
 *
 * @packageDocumentation
 */
import { CLUSTER_PRESET_NAMES } from '@fairkv/core';
import { type Command, Option } from 'commander';
import { addExamples } from '../command-help.js';
import { integerAtLeast } from '../option-parsers.js';
import type { InspectPlanFlags } from './inspect-action.js';

/** Registers `fairkv inspect` and its subcommands on the program. */
export function registerInspectCommand(program: Command): Command {
  const inspect = program
    .command('inspect')
    .summary('inspect backends, a model or a plan')
    .description("Report which backends work here, a model's architecture and sizes, or a plan's validity.");
  const backends = inspect
    .command('backends')
    .description('Which backends work on this machine, why each unavailable one is not, and which the runtime drives.')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }) => (await import('./inspect-action.js')).inspectBackends(flags));
  addExamples(backends, [{ command: 'fairkv inspect backends', description: 'probe cpu, cuda and webgpu' }]);
  const model = inspect
    .command('model')
    .description(
      'Architecture, tensors, bytes per dtype, KV bytes per token and the dtype GPUs run it in (--dtype auto) of a model.',
    )
    .argument('<model>', 'GGUF file, Hugging Face folder, config.json or preset name')
    .option('--json', 'print JSON')
    .action(async (spec: string, flags: { json?: boolean }) =>
      (await import('./inspect-action.js')).inspectModel(spec, flags),
    );
  addExamples(model, [
    { command: 'fairkv inspect model stories260K.gguf', description: 'a GGUF file' },
    { command: 'fairkv inspect model llama-3.3-70b --json', description: 'sizes of a preset as JSON' },
  ]);
  const plan = inspect
    .command('plan')
    .description('Validation report (every issue, by JSON path) and per-device summary of a plan document.')
    .argument('<plan.json>', 'plan written by `fairkv plan --out`')
    .option('--model <model>', 'also check layer and kv-head counts against this model')
    .addOption(
      new Option('--cluster <preset>', 'also check predicted memory against this cluster').choices(
        CLUSTER_PRESET_NAMES,
      ),
    )
    .option('--devices <n>', "devices of --cluster (default: the plan's)", integerAtLeast(1))
    .option('--json', 'print JSON')
    .action(async (path: string, flags: InspectPlanFlags) =>
      (await import('./inspect-action.js')).inspectPlan(path, flags),
    );
  addExamples(plan, [
    { command: 'fairkv inspect plan plan.json', description: 'validate a plan and summarise its devices' },
    {
      command: 'fairkv inspect plan plan.json --model llama-3.3-70b --cluster h100-sxm-80g',
      description: 'check it against a model and 8 H100s',
    },
  ]);
  return addExamples(inspect, [
    { command: 'fairkv inspect backends', description: 'which backends work here' },
    { command: 'fairkv inspect model model.gguf', description: 'a model file' },
    { command: 'fairkv inspect plan plan.json', description: 'a plan document' },
  ]);
}
