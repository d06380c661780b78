/**
 * `fairkv plan`: solves a FairKV placement (arXiv 2502.15804) with one or more solvers for a model,
 * a head-load profile and a cluster, prints a comparison table, and writes the plan, the JSON
 * results and a per-device, per-layer load chart.
 *
 * @packageDocumentation
 */
import { CLUSTER_PRESET_NAMES, DTYPES } from '@fairkv/core';
import { type Command, Option } from 'commander';
import { UsageError } from '../cli-error.js';
import { SOLVER_NAMES } from '../cli-names.js';
import { addExamples } from '../command-help.js';
import { addCostModelOptions } from '../cost-model-flags.js';
import { batchSize, integerAtLeast, listOf, numberInRange } from '../option-parsers.js';
import type { PlanFlags } from './plan-action.js';

/** Registers `fairkv plan` on the program. */
export function registerPlanCommand(program: Command): Command {
  const command = program
    .command('plan')
    .summary('solve a FairKV head placement and compare solvers')
    .description(
      'Solve the FairKV placement of kv heads on devices (contiguous tensor parallelism, greedy best-effort ' +
        'assignment, Fair-Copying, exact ILP) for a model, a head-load profile and a cluster; print each ' +
        "solver's predicted throughput, speed-up over contiguous, memory balance, copies and solve time.",
    )
    .requiredOption('--model <model>', 'preset name, Hugging Face config.json, GGUF file or model folder')
    .requiredOption(
      '--profile <spec>',
      'head-load profile JSON, or duo:<full_attention_heads.tsv>[:sparsity=S|threshold=T][,context=N][,sink=N][,recent=N]',
    )
    .option('--devices <n>', 'number of devices', integerAtLeast(1), 8)
    .addOption(
      new Option('--cluster <preset>', 'device type of the cluster')
        .choices(CLUSTER_PRESET_NAMES)
        .default('h100-sxm-80g'),
    )
    .addOption(
      new Option('--solver <names>', `comma-separated solvers: ${SOLVER_NAMES.join(', ')}, or all`)
        .argParser(listOf([...SOLVER_NAMES, 'all']))
        .default(['all'], 'all'),
    )
    .option('--batch <n|max>', 'concurrent requests per decode step, or max (the largest that fits)', batchSize, 'max')
    .option('--context <n>', "context a request reaches (default: the profile's)", integerAtLeast(1))
    .option('--new-tokens <n>', 'tokens generated per request (default 256)', integerAtLeast(1))
    .addOption(new Option('--dtype <dtype>', 'weight and KV dtype').choices(DTYPES).default('bf16'))
    .option('--max-replicas <n>', 'most replicas of one head (1 forbids Fair-Copying)', integerAtLeast(1))
    .option('--copy-budget <n>', 'most extra replicas over the whole model', integerAtLeast(0));
  addCostModelOptions(command)
    .option(
      '--time-limit <seconds>',
      'ilp: wall-clock limit (default 30)',
      numberInRange(0, Number.POSITIVE_INFINITY, true),
    )
    .option('--out <plan.json>', "write the best solver's plan document")
    .option('--plot <load.svg>', 'draw per-device, per-layer load of every plan as SVG')
    .option('--json', 'print {"results": [{solver, plan, predicted, solveSeconds, optimal}]} instead of the table')
    .action(async (flags: PlanFlags) => {
      if (flags.solver.length === 0) throw new UsageError('--solver: expected at least one solver');
      await (await import('./plan-action.js')).runPlan(flags);
    });
  return addExamples(command, [
    {
      command:
        'fairkv plan --model llama-3.1-8b --profile duo:full_attention_heads.tsv:sparsity=0.5,context=32768 --devices 8',
      description: 'compare every solver for Llama-3.1-8B under DuoAttention on 8 H100s',
    },
    {
      command:
        'fairkv plan --model llama-3.3-70b --profile profile.json --devices 8 --solver fair-copy --batch 64 --out plan.json',
      description: 'write a Fair-Copying plan for batch 64',
    },
    {
      command: 'fairkv plan --model config.json --profile profile.json --plot load.svg --json > results.json',
      description: 'machine-readable results and a load chart',
    },
  ]);
}
