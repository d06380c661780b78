/**
 * The work behind `fairkv bench`: runs the runtime under a synthetic load (N requests, C at a time) with the plan of
 * each solver, and prints measured throughput beside the cost model's prediction; writes JSON.
 *
 * @packageDocumentation
 */
import { cpus } from 'node:os';
import type { HeadLoadProfile } from '@fairkv/core';
import { type CostConstants, fitLayerOverhead, predictPlan } from '@fairkv/placement';
import { createInferenceEngine, type InferenceEngine } from '@fairkv/runtime';
import { chooseDtype, clusterFor, describeDtype, profileBackendOf, resolveBackend } from '../backend-choice.js';
import { UsageError } from '../cli-error.js';
import type { BACKEND_CHOICES, DtypeChoice } from '../cli-names.js';
import { printJson, printWarnings } from '../command-help.js';
import { type CostModelFlags, costModelOptions } from '../cost-model-flags.js';
import { demoPrompts } from '../demo-prompts.js';
import { kvBalance } from '../device-report.js';
import { contiguousProfileDevices, measureProfile, uniformProfile } from '../engine-plan.js';
import { writeTextFile } from '../files.js';
import { profileFromResults } from '../measured-profile.js';
import { describeModel, loadModelChoice } from '../model-source.js';
import { type CliSolverName, copyCount, runSolver } from '../placement-run.js';
import { createPolicy, describePolicy, type PolicyFlags } from '../policy-spec.js';
import { fitProfile, loadProfile } from '../profile-source.js';
import { readPrompts } from '../prompts-file.js';
import { runWorkload } from '../run-workload.js';
import { createProgress, formatBytes, formatNumber, renderTable, stylesFor } from '../terminal.js';
import { version } from '../version.js';

/** The flags of `fairkv bench`, as commander parsed them. */
export interface BenchFlags extends PolicyFlags, CostModelFlags {
  model?: string;
  devices: number;
  solvers: CliSolverName[];
  requests: number;
  concurrency: number;
  maxTokens: number;
  prompts?: string;
  profile?: string;
  backend: (typeof BACKEND_CHOICES)[number];
  cluster?: string;
  dtype: DtypeChoice;
  kernelProfile?: boolean;
  /** Fit the cost model's per-layer overhead to the first solver's measured run. */
  calibrate?: boolean;
  /** False with `--no-graph-steps`. */
  graphSteps: boolean;
  /** False with `--no-warmup`. */
  warmup: boolean;
  out: string;
  json?: boolean;
}

/** What each engine generates before it is measured (unless `--no-warmup`). */
const WARMUP = { maxTokens: 2, stopAtEos: false } as const;

/** The action of the command (loaded on demand). */
export async function runBench(flags: BenchFlags): Promise<void> {
  if (flags.calibrate && flags.layerOverhead !== undefined) {
    throw new UsageError('--calibrate fits the layer overhead that --layer-overhead sets: give one');
  }
  if (flags.calibrate && flags.calibration !== undefined) {
    throw new UsageError('--calibrate fits the constants that --calibration reads: give one');
  }
  // read once, before any model loads (a bad --calibration file fails fast)
  const costOptions = costModelOptions(flags);
  const quiet = flags.json === true;
  const pool = flags.prompts ? readPrompts(flags.prompts) : undefined;
  const prompts = pool
    ? Array.from({ length: flags.requests }, (_, index) => pool[index % pool.length]!)
    : demoPrompts(flags.requests);
  const choice = await loadModelChoice(flags.model);
  const { model } = choice;
  const style = stylesFor();
  try {
    const config = model.config;
    const policy = createPolicy(flags, config);
    const backend = await resolveBackend(flags.backend, flags.devices);
    const cluster = clusterFor(backend, flags.cluster, flags.devices, 'the predictions');
    const clusterName = cluster.name;
    const chosenDtype = chooseDtype(flags.dtype, backend, model);
    const { dtype } = chosenDtype;
    if (!quiet) {
      const devices =
        backend.name === 'cuda' ? `cuda: ${backend.gpus.join(', ')}` : `cpu: ${flags.devices} worker threads`;
      process.stderr.write(
        `${describeModel(choice)}\n${describePolicy(policy)}\n${devices}; ${describeDtype(chosenDtype)}; predictions for ${clusterName}\n`,
      );
    }
    const progress = createProgress(quiet);
    const warnings: string[] = [];
    const longest = Math.max(...prompts.map((prompt) => model.tokenizer.encode(prompt).length));
    const contextLength = Math.min(config.maxContext, longest + flags.maxTokens);
    // undefined: observed in the first solver's run, standard tensor parallelism (FairKV's workflow)
    let profile: HeadLoadProfile | undefined;
    if (flags.profile) {
      const loaded = loadProfile(flags.profile, config);
      profile = loaded.profile;
      warnings.push(...loaded.warnings);
    } else if (flags.solvers[0] !== 'contiguous') {
      // the loads are observed where the bench runs: on the GPUs, under standard tensor parallelism over
      // its devices (prefills of a GPU-sized model on the CPU would take minutes)
      const devices =
        backend.name === 'cuda'
          ? await contiguousProfileDevices(profileBackendOf(backend, dtype), {
              model: config,
              cluster,
              batch: flags.concurrency,
              maxTokens: flags.maxTokens,
            })
          : undefined;
      progress.start(prompts.length, 'profile');
      profile = fitProfile(
        await measureProfile(
          {
            model,
            policy,
            prompts,
            maxTokens: flags.maxTokens,
            onProfileProgress: (done) => progress.update(done),
          },
          devices,
        ),
        config,
        'measured',
      ).profile;
      progress.stop();
    }
    // --calibrate: the overhead fitted on the first run, for its prediction and every later one
    let calibration: (CostConstants & { solver: CliSolverName; clamped: boolean }) | undefined;
    const requestWith = (loads: HeadLoadProfile) => ({
      model: config,
      profile: loads,
      cluster,
      batch: flags.concurrency,
      dtype,
      options: {
        ...costOptions,
        ...(calibration ? { layerOverheadSeconds: calibration.layerOverheadSeconds } : {}),
      },
    });
    const results = [];
    for (const [index, solver] of flags.solvers.entries()) {
      // contiguous placement does not depend on the loads: before they are observed, any profile serves
      let solved = await runSolver(solver, requestWith(profile ?? uniformProfile(config, contextLength)));
      warnings.push(...solved.warnings);
      const engine = await createInferenceEngine({
        model,
        plan: solved.plan,
        policy,
        // each engine of a cuda run forms its own NCCL group
        backend: index === 0 ? backend.backend : backend.next(),
        execution: 'workers',
        dtype,
        maxBatch: flags.concurrency,
        maxPositions: Math.min(config.maxContext, longest + flags.maxTokens + 1),
        graphSteps: flags.graphSteps,
      });
      try {
        if (flags.warmup) {
          // one batch of short requests first: lazy kernel loading, library heuristics and workspace
          // growth happen there, not in the first solver's measured figures
          await runWorkload({ engine, prompts: prompts.slice(0, flags.concurrency), generate: WARMUP });
        }
        progress.start(prompts.length, solver);
        if (flags.kernelProfile) await engine.startProfile();
        const figures = await runWorkload({
          engine,
          prompts,
          generate: { maxTokens: flags.maxTokens, stopAtEos: false },
          onRequestDone: (done) => progress.update(done),
        });
        // totals per operation only: a whole benchmark's call-by-call list would swamp the JSON
        const operationProfiles = flags.kernelProfile
          ? (await engine.stopProfile()).map(({ calls: _calls, ...totals }) => totals)
          : undefined;
        progress.stop();
        if (!profile) {
          profile = fitProfile(
            profileFromResults(figures.results, {
              policy,
              generatedTokens: flags.maxTokens,
              contextLength,
              model: config.name,
              source: `kept tokens of ${prompts.length} requests under the contiguous plan (${backend.name}, ${dtype}, ${flags.devices} device${flags.devices === 1 ? '' : 's'})`,
            }),
            config,
            'measured',
          ).profile;
          // the same placement, its plan document now scored with the observed loads
          solved = await runSolver(solver, requestWith(profile));
        }
        if (flags.calibrate && index === 0) {
          if (!(figures.decodeTokensPerSecond > 0)) {
            throw new UsageError(
              `--calibrate: the ${solver} run took no decode step to fit on (--max-tokens ${flags.maxTokens}); give --max-tokens a few hundred`,
            );
          }
          // a decode step of the whole batch: what the cost model predicts (tokens/s = batch / step)
          const stepSeconds = flags.concurrency / figures.decodeTokensPerSecond;
          calibration = {
            solver,
            ...fitLayerOverhead({ plan: solved.plan, request: requestWith(profile), stepSeconds }),
          };
          if (calibration.clamped) {
            warnings.push(
              `--calibrate: ${solver} decoded faster than the cost model's bytes alone allow at bandwidth efficiency ` +
                `${calibration.bandwidthEfficiency}; the layer overhead is 0 (give a lower --bandwidth-efficiency)`,
            );
          }
        }
        const predicted = predictPlan(solved.plan, requestWith(profile));
        results.push({
          solver,
          plan: solved.plan,
          copies: copyCount(solved.plan),
          measured: {
            decodeTokensPerSecond: figures.decodeTokensPerSecond,
            tokensPerSecond: figures.tokensPerSecond,
            generatedTokens: figures.generatedTokens,
            wallSeconds: figures.wallSeconds,
            prefillSeconds: figures.prefillSeconds,
            decodeSeconds: figures.decodeSeconds,
            kvBalance: kvBalance(figures.devices),
            devices: figures.devices,
            ...(operationProfiles ? { operationProfiles } : {}),
          },
          predicted: {
            throughputTokensPerSecond: predicted.throughputTokensPerSecond,
            stepTimeSeconds: predicted.stepTimeSeconds,
            batch: predicted.batch,
            efficiency: predicted.efficiency,
            devices: predicted.devices.map((device) => ({ memoryBytes: device.memoryBytes, kvBytes: device.kvBytes })),
          },
        });
      } finally {
        progress.stop();
        await engine.dispose();
      }
    }
    const document = {
      fairkv: version,
      model: config.name,
      modelPath: model.path,
      randomWeights: model.randomWeights,
      backend: backend.name === 'cuda' ? { name: 'cuda', gpus: backend.gpus } : { name: 'cpu' },
      cluster: clusterName,
      dtype,
      policy: { name: policy.name, settings: policy.settings },
      devices: flags.devices,
      requests: flags.requests,
      concurrency: flags.concurrency,
      maxTokens: flags.maxTokens,
      warmup: flags.warmup ? { requests: Math.min(flags.concurrency, prompts.length), ...WARMUP } : false,
      profileSource: profile?.source,
      calibration: calibration ?? null,
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
      results,
    };
    writeTextFile(flags.out, `${JSON.stringify(document, null, 2)}\n`, '--out');
    printWarnings(warnings);
    if (quiet) {
      printJson(document);
      return;
    }
    const base = results[0]!;
    const rows = results.map((result) => [
      result.solver,
      formatNumber(result.measured.decodeTokensPerSecond),
      formatNumber(result.predicted.throughputTokensPerSecond),
      `${(result.measured.decodeTokensPerSecond / base.measured.decodeTokensPerSecond).toFixed(2)}x`,
      `${(result.predicted.throughputTokensPerSecond / base.predicted.throughputTokensPerSecond).toFixed(2)}x`,
      result.measured.kvBalance.toFixed(2),
      formatBytes(Math.max(...result.measured.devices.map((device) => device.kvBytesPeak))),
      String(result.copies),
    ]);
    process.stdout.write(
      `${style.bold(`${flags.requests} requests, ${flags.concurrency} at a time, ${flags.maxTokens} tokens each, ${flags.devices} ${backend.name === 'cuda' ? 'GPUs' : 'CPU devices'}`)}\n\n` +
        `${renderTable(
          [
            'solver',
            'measured tok/s',
            'predicted tok/s',
            `measured vs ${base.solver}`,
            `predicted vs ${base.solver}`,
            'KV max/mean',
            'KV peak',
            'copies',
          ],
          rows,
        )}\n\nmeasured: decode tokens/s of the ${backend.name === 'cuda' ? `${flags.devices} GPU workers` : 'CPU workers'}; predicted: cost model for the ${clusterName} cluster preset${calibrationNote(calibration, flags)}\nloads the plans balance: ${profile?.source}\nwrote ${flags.out}\n`,
    );
    for (const result of results) {
      const profiles = result.measured.operationProfiles;
      if (profiles)
        process.stdout.write(
          `\n${style.bold(`${result.solver}: device time per operation`)}\n${renderOperationProfiles(profiles)}\n`,
        );
    }
  } finally {
    model.close();
  }
}

/**
 * `, its layer overhead fitted on contiguous's run (812 µs at bandwidth efficiency 1)`; without
 * `--calibrate` or either constant, a pointer to it (the defaults are the paper's ideal hardware).
 */
function calibrationNote(calibration: (CostConstants & { solver: string }) | undefined, flags: CostModelFlags): string {
  if (!calibration) {
    if (flags.calibration !== undefined) return ` with the constants of ${flags.calibration}`;
    const given = flags.bandwidthEfficiency !== undefined || flags.layerOverhead !== undefined;
    return given
      ? ' with the given constants'
      : ' with its ideal-hardware constants (--calibrate fits them to this run)';
  }
  return (
    `, its layer overhead fitted on ${calibration.solver}'s run (${formatNumber(calibration.layerOverheadSeconds * 1e6)} µs ` +
    `at bandwidth efficiency ${calibration.bandwidthEfficiency})`
  );
}

/** One device's operation profile, as `InferenceEngine.stopProfile` returns it. */
type OperationProfile = Awaited<ReturnType<InferenceEngine['stopProfile']>>[number];

/**
 * One row per device: its busy share of the profiled span and its longest operations with their share of
 * the busy time and call counts (`--kernel-profile`).
 */
export function renderOperationProfiles(profiles: readonly OperationProfile[], top = 5): string {
  const rows = profiles.map((profile, device) => {
    const busy = profile.busyMilliseconds;
    const operations = profile.operations
      .slice(0, top)
      .map(
        (operation) =>
          `${operation.name} ${busy > 0 ? ((100 * operation.milliseconds) / busy).toFixed(0) : '0'}% (${operation.count})`,
      )
      .join(', ');
    return [
      String(device),
      `${busy.toFixed(1)} ms`,
      profile.spanMilliseconds > 0 ? `${((100 * busy) / profile.spanMilliseconds).toFixed(0)}%` : '-',
      operations,
    ];
  });
  return renderTable(['device', 'busy', 'busy / span', 'longest operations (share of busy, calls)'], rows);
}
