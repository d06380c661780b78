/**
 * `fairkv bench`: runs the runtime under a synthetic load (N requests, C at a time) with the plan of
 * each solver, and prints measured throughput beside the cost model's prediction; writes JSON.
 *
 * @packageDocumentation
 */
import { CLUSTER_PRESET_NAMES } from '@fairkv/core';
import { type Command, Option } from 'commander';
import { BACKEND_CHOICES, DTYPE_AUTO_HELP, DTYPE_CHOICES, SOLVER_NAMES } from '../cli-names.js';
import { addExamples } from '../command-help.js';
import { addCostModelOptions } from '../cost-model-flags.js';
import { integerAtLeast, listOf } from '../option-parsers.js';
import { addPolicyOptions } from '../policy-flags.js';
import type { BenchFlags } from './bench-action.js';

/** Registers `fairkv bench` on the program. */
export function registerBenchCommand(program: Command): Command {
  const command = program
    .command('bench')
    .summary("measured against predicted throughput of each solver's plan on CPU devices or GPUs")
    .description(
      'Run the runtime on CPU devices (worker threads) or GPUs under a synthetic load: --requests requests, ' +
        '--concurrency decoded together, with the plan of each solver (balanced on --profile, or on the loads ' +
        'the first, contiguous run kept, or on a profile measured on the prompts); print measured and predicted ' +
        'throughput side by side and write JSON.',
    )
    .option(
      '--model <path>',
      'GGUF file or Hugging Face folder (default: $FAIRKV_MODEL, else the embedded random-weight model)',
    )
    .option('--devices <n>', 'devices (worker threads; GPUs with --backend cuda)', integerAtLeast(1), 2)
    .addOption(
      new Option(
        '--backend <name>',
        'compute backend: cpu (a worker thread per device), cuda (a worker thread, CUDA backend and NCCL rank per GPU), or auto (cuda when enough GPUs work here, else cpu)',
      )
        .choices(BACKEND_CHOICES)
        .default('cpu'),
    )
    .addOption(
      new Option(
        '--cluster <preset>',
        'device type the predictions assume (default: cpu on the cpu backend; the GPUs found with cuda)',
      ).choices(CLUSTER_PRESET_NAMES),
    )
    .addOption(
      new Option('--solvers <names>', `comma-separated: ${SOLVER_NAMES.join(', ')}`)
        .argParser(listOf(SOLVER_NAMES))
        .default(['contiguous', 'fair-copy'], 'contiguous,fair-copy'),
    );
  addPolicyOptions(command, 'full')
    .option('--requests <n>', 'requests in the load', integerAtLeast(1), 8)
    .option('--concurrency <n>', 'requests decoded together (the batch)', integerAtLeast(1), 4)
    .option('--max-tokens <n>', 'tokens each request generates', integerAtLeast(1), 16)
    .option('--prompts <file>', 'prompts, one per line or JSON Lines (default: built-in story openings)')
    .option(
      '--profile <spec>',
      'head-load profile the solvers balance (default: the loads of the contiguous run when it comes first, else measured on the prompts on the --backend devices)',
    )
    .addOption(
      new Option('--dtype <dtype>', `dtype of the weights and the KV cache on the devices (${DTYPE_AUTO_HELP})`)
        .choices(DTYPE_CHOICES)
        .default('auto'),
    )
    .option(
      '--no-graph-steps',
      'run decode steps one operation at a time, not as recorded graph steps (CUDA graphs on cuda; same tokens)',
    );
  addCostModelOptions(command, 'predictions: ')
    .option(
      '--calibrate',
      "predictions: fit the layer overhead to the first solver's measured decode rate (at --bandwidth-efficiency), then predict every plan with it",
    )
    .option(
      '--no-warmup',
      'measure from the first request (default: one batch of 2-token requests runs first, unmeasured)',
    )
    .option(
      '--kernel-profile',
      "time every operation on every device (the backend's profiler: device time per kernel, copy and all-reduce); slows the run",
    )
    .option('--out <bench.json>', 'where to write the JSON results', 'fairkv-bench.json')
    .option('--json', 'print the JSON results to stdout too, instead of the table')
    .action(async (flags: BenchFlags) => (await import('./bench-action.js')).runBench(flags));
  return addExamples(command, [
    {
      command:
        'fairkv bench --devices 2 --solvers contiguous,greedy,fair-copy --policy ada-kv --budget 16 --requests 16 --concurrency 8',
      description: 'compare three plans under Ada-KV on the default model',
    },
    {
      command: 'fairkv bench --model stories260K.gguf --devices 4 --policy snapkv --budget 24 --out bench.json',
      description: 'stories260K on 4 devices',
    },
    {
      command:
        'fairkv bench --model model.gguf --backend cuda --devices 2 --solvers contiguous,greedy,fair-copy --requests 64 --concurrency 64 --max-tokens 512 --calibrate',
      description: '2 GPUs, every plan predicted with the layer overhead fitted on the contiguous run',
    },
  ]);
}
