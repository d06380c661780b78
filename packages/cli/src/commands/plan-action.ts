/**
 * The work behind `fairkv plan`: solves a FairKV placement (arXiv 2502.15804) with one or more solvers for a model,
 * a head-load profile and a cluster, prints a comparison table, and writes the plan, the JSON
 * results and a per-device, per-layer load chart.
 *
 * @packageDocumentation
 */
import { createCluster, type DType } from '@fairkv/core';
import { type PlacementOptions, type PlacementRequest, resolvePlacementOptions } from '@fairkv/placement';
import { InputError, oneLineMessage, withContext } from '../cli-error.js';
import { printJson, printWarnings } from '../command-help.js';
import { type CostModelFlags, costModelOptions } from '../cost-model-flags.js';
import { writeTextFile } from '../files.js';
import { loadCells, loadChartSpec, renderSvg } from '../load-chart.js';
import { resolveModelConfig } from '../model-source.js';
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

/** The flags of `fairkv plan`, as commander parsed them. */
export interface PlanFlags extends CostModelFlags {
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
    ...costModelOptions(flags),
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

/** `cost model: bandwidth efficiency 0.985, layer overhead 232 µs (--calibration cal.json)`, defaults named as such. */
function costModelLine(request: PlacementRequest, calibration: string | undefined): string {
  const given = request.options ?? {};
  const { bandwidthEfficiency, layerOverheadSeconds } = resolvePlacementOptions(given, request.cluster.devices.length);
  const defaults = given.bandwidthEfficiency === undefined && given.layerOverheadSeconds === undefined;
  const source = calibration ? ` (--calibration ${calibration})` : defaults ? ' (defaults: ideal hardware)' : '';
  return (
    `cost model: bandwidth efficiency ${Number(bandwidthEfficiency.toPrecision(4))}, ` +
    `layer overhead ${formatNumber(layerOverheadSeconds * 1e6)} µs${source}`
  );
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

/** The action of the command (loaded on demand). */
export async function runPlan(flags: PlanFlags): Promise<void> {
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
        `profile ${profile.policy.name} (${profile.source}), context ${request.contextLength ?? profile.contextLength}\n` +
        `${costModelLine(request, flags.calibration)}\n\n`,
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
