/**
 * `fairkv plan`: solves a FairKV placement (arXiv 2502.15804) with one or more solvers for a model,
 * a head-load profile and a cluster, prints a comparison table, and writes the plan, the JSON
 * results and a per-device, per-layer load chart.
 *
 * @packageDocumentation
 */
import { CLUSTER_PRESET_NAMES, createCluster, DTYPES, type DType } from '@fairkv/core';
import type { PlacementOptions, PlacementRequest } from '@fairkv/placement';
import { type Command, Option } from 'commander';
import { InputError, oneLineMessage, UsageError, withContext } from '../cli-error.js';
import { addExamples, printJson, printWarnings } from '../command-help.js';
import { writeTextFile } from '../files.js';
import { loadCells, loadChartSpec, renderSvg } from '../load-chart.js';
import { resolveModelConfig } from '../model-source.js';
import { batchSize, integerAtLeast, listOf, numberInRange } from '../option-parsers.js';
import {
  bestOutcome,
  type CliSolverName,
  copyCount,
  memoryBalance,
  runSolvers,
  SOLVER_NAMES,
  type SolverOutcome,
} from '../placement-run.js';
import { loadProfile } from '../profile-source.js';
import { createProgress, formatBytes, formatNumber, formatSeconds, renderTable, stylesFor } from '../terminal.js';

interface PlanFlags {
  model: string;
  profile: string;
  devices: number;
  cluster: string;
  solver: string[];
  batch: number | 'max';
  context?: number;
  newTokens?: number;
  dtype: DType;
  maxReplicas?: number;
  copyBudget?: number;
  timeLimit?: number;
  out?: string;
  plot?: string;
  json?: boolean;
}

/** Expands `all` in a `--solver` list. */
export function expandSolvers(list: readonly string[]): CliSolverName[] {
  return list.includes('all') ? [...SOLVER_NAMES] : (list as CliSolverName[]);
}

/** Builds the placement request the flags describe. */
async function buildRequest(flags: PlanFlags): Promise<{ request: PlacementRequest; warnings: string[] }> {
  const model = await resolveModelConfig(flags.model);
  let cluster: ReturnType<typeof createCluster>;
  try {
    cluster = createCluster(flags.cluster, flags.devices);
  } catch (error) {
    throw new InputError(`--devices ${flags.devices}: ${oneLineMessage(error).replace(/^deviceCount: /, '')}`);
  }
  const { profile, warnings } = loadProfile(flags.profile, model, flags.context);
  const options: PlacementOptions = {
    ...(flags.maxReplicas !== undefined ? { maxReplicasPerHead: flags.maxReplicas } : {}),
    ...(flags.copyBudget !== undefined ? { copyBudget: flags.copyBudget } : {}),
    ...(flags.timeLimit !== undefined ? { timeLimitSeconds: flags.timeLimit } : {}),
  };
  if (flags.maxReplicas !== undefined && flags.maxReplicas > flags.devices) {
    throw new InputError(`--max-replicas ${flags.maxReplicas}: expected at most --devices ${flags.devices}`);
  }
  return {
    request: {
      model,
      profile,
      cluster,
      batch: flags.batch,
      dtype: flags.dtype,
      ...(flags.context !== undefined ? { contextLength: flags.context } : {}),
      ...(flags.newTokens !== undefined ? { newTokens: flags.newTokens } : {}),
      options,
    },
    warnings,
  };
}

function tableOf(outcomes: SolverOutcome[]): string {
  const baseline = outcomes.find((outcome) => outcome.solver === 'contiguous')?.result?.predicted;
  const rows = outcomes.map(({ solver, result, error }) => {
    if (!result) return [solver, `failed: ${oneLineMessage(error)}`, '', '', '', '', '', '', ''];
    const p = result.predicted;
    return [
      solver,
      formatNumber(p.throughputTokensPerSecond, 4),
      baseline ? `${(p.throughputTokensPerSecond / baseline.throughputTokensPerSecond).toFixed(2)}x` : 'n/a',
      String(p.batch),
      formatSeconds(p.stepTimeSeconds),
      memoryBalance(p).toFixed(3),
      p.efficiency.toFixed(3),
      String(copyCount(result.plan)),
      `${formatSeconds(result.solveSeconds)}${result.optimal ? ' (optimal)' : ''}`,
    ];
  });
  return renderTable(
    ['solver', 'tokens/s', 'speed-up', 'batch', 'step', 'mem max/mean', 'efficiency', 'copies', 'solve time'],
    rows,
  );
}

async function runPlan(flags: PlanFlags): Promise<void> {
  const solvers = expandSolvers(flags.solver);
  const { request, warnings } = await buildRequest(flags);
  const progress = createProgress(flags.json === true);
  let started = false;
  const outcomes = await runSolvers(solvers, request, (solved, total) => {
    if (!started) progress.start(total, 'ilp');
    started = true;
    progress.update(solved);
  });
  progress.stop();
  const failed = outcomes.filter((outcome) => !outcome.result);
  if (failed.length === outcomes.length) {
    // every solver failed: report the first error with its own exit code
    throw withContext(failed[0]!.error, `--solver ${failed[0]!.solver}`);
  }
  printWarnings([...warnings, ...outcomes.flatMap((outcome) => outcome.result?.warnings ?? [])]);
  const best = bestOutcome(outcomes)!;
  if (flags.out) writeTextFile(flags.out, `${JSON.stringify(best.result!.plan, null, 2)}\n`, '--out');
  if (flags.plot) {
    const plans = outcomes
      .filter((outcome) => outcome.result)
      .map((outcome) => ({
        solver: outcome.solver,
        plan: outcome.result!.plan,
        batch: outcome.result!.predicted.batch,
      }));
    const title = `${request.model.name} on ${flags.devices} x ${flags.cluster}`;
    const svg = await renderSvg(loadChartSpec(loadCells(plans, request), title, solvers));
    writeTextFile(flags.plot, svg, '--plot');
  }
  if (flags.json) {
    printJson({
      results: outcomes
        .filter((outcome) => outcome.result)
        .map(({ solver, result }) => ({
          solver,
          plan: result!.plan,
          predicted: result!.predicted,
          solveSeconds: result!.solveSeconds,
          optimal: result!.optimal,
        })),
    });
  } else {
    const style = stylesFor();
    const { model, profile, cluster } = request;
    process.stdout.write(
      `${style.bold(`${model.name} on ${cluster.devices.length} x ${cluster.name}`)}, ${flags.dtype}, batch ${flags.batch}, ` +
        `profile ${profile.policy.name} (${profile.source}), context ${request.contextLength ?? profile.contextLength}\n\n`,
    );
    process.stdout.write(`${tableOf(outcomes)}\n`);
    const p = best.result!.predicted;
    process.stdout.write(
      `\nbest: ${style.green(best.solver)}, ${formatNumber(p.throughputTokensPerSecond, 4)} tokens/s at batch ${p.batch}; ` +
        `device memory ${p.devices.map((device) => formatBytes(device.memoryBytes)).join(' / ')}\n`,
    );
    if (flags.out) process.stdout.write(`wrote ${flags.out} (${best.solver} plan)\n`);
    if (flags.plot) process.stdout.write(`wrote ${flags.plot}\n`);
  }
  for (const outcome of failed) {
    process.stderr.write(`warning: ${outcome.solver} failed: ${oneLineMessage(outcome.error)}\n`);
  }
}

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
    .option('--copy-budget <n>', 'most extra replicas over the whole model', integerAtLeast(0))
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
      await runPlan(flags);
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
