/**
 * The work behind `fairkv generate`: generates text from a prompt on one or several devices (CPU worker
 * threads, or a worker thread per GPU with `--backend cuda`),
 * under a compression policy and a placement plan, streaming the text; then reports per-device KV
 * memory and tokens per second.
 *
 * @packageDocumentation
 */
import { createInferenceEngine } from '@fairkv/runtime';
import {
  type ChosenDtype,
  chooseDtype,
  clusterFor,
  describeDtype,
  profileBackendOf,
  type ResolvedBackend,
  resolveBackend,
} from '../backend-choice.js';
import { InputError, UsageError } from '../cli-error.js';
import type { BACKEND_CHOICES, DtypeChoice } from '../cli-names.js';
import { printJson, printWarnings } from '../command-help.js';
import { deviceTable } from '../device-report.js';
import { choosePlan } from '../engine-plan.js';
import { describeModel, loadModelChoice } from '../model-source.js';
import type { CliSolverName } from '../placement-run.js';
import { createPolicy, describePolicy, type PolicyFlags } from '../policy-spec.js';
import { runWorkload } from '../run-workload.js';
import { createProgress, formatNumber, stylesFor } from '../terminal.js';

/** The flags of `fairkv generate`, as commander parsed them. */
export interface GenerateFlags extends PolicyFlags {
  model?: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  stop?: string[];
  devices?: number;
  plan?: string;
  solver?: CliSolverName;
  profile?: string;
  cluster?: string;
  backend: (typeof BACKEND_CHOICES)[number];
  dtype: DtypeChoice;
  /** False with `--no-graph-steps`. */
  graphSteps: boolean;
  json?: boolean;
}

/** The action of the command (loaded on demand). */
export async function runGenerate(flags: GenerateFlags): Promise<void> {
  const choice = await loadModelChoice(flags.model);
  const { model } = choice;
  const quiet = flags.json === true;
  const style = stylesFor(process.stderr);
  try {
    const policy = createPolicy(flags, model.config);
    if (!quiet) process.stderr.write(`${style.dim(describeModel(choice))}\n`);
    const progress = createProgress(quiet);
    if (flags.cluster && flags.plan) throw new UsageError('--cluster applies to --devices and --solver, not to --plan');
    // resolved once the device count is known (a --plan's may differ from --devices), the dtype with it
    let resolved: ResolvedBackend | undefined;
    let chosenDtype: ChosenDtype | undefined;
    const chosen = await choosePlan({
      model,
      flags,
      policy,
      prompts: [flags.prompt],
      maxTokens: flags.maxTokens,
      batch: 1,
      onProfileProgress: (done, total) => {
        if (done === 1) progress.start(total, 'profile');
        progress.update(done);
      },
      // plans for GPUs are checked against GPU memory in the GPUs' dtype, and the prompt's loads are
      // measured on the GPUs (a CPU prefill of a GPU-sized model takes minutes)
      devicesFor: async (deviceCount) => {
        resolved = await resolveBackend(flags.backend, deviceCount);
        chosenDtype = chooseDtype(flags.dtype, resolved, model);
        const { dtype } = chosenDtype;
        const cluster = clusterFor(resolved, flags.cluster, deviceCount, "the plan's memory and time model");
        return resolved.name === 'cuda'
          ? { cluster, dtype, profileOn: profileBackendOf(resolved, dtype) }
          : { cluster, dtype };
      },
    });
    progress.stop();
    printWarnings(chosen.warnings);
    if (!quiet) process.stderr.write(style.dim(`${describePolicy(policy)}; ${chosen.description}\n`));
    const promptTokens = model.tokenizer.encode(flags.prompt).length;
    const maxPositions = Math.min(model.config.maxContext, promptTokens + flags.maxTokens + 1);
    if (promptTokens + flags.maxTokens > model.config.maxContext) {
      throw new InputError(
        `--max-tokens ${flags.maxTokens}: the prompt (${promptTokens} tokens) plus max tokens exceeds the model's context of ${model.config.maxContext}`,
      );
    }
    const backend = resolved ?? (await resolveBackend(flags.backend, chosen.deviceCount));
    chosenDtype ??= chooseDtype(flags.dtype, backend, model);
    const { dtype } = chosenDtype;
    if (!quiet && backend.name === 'cuda') {
      process.stderr.write(style.dim(`cuda: ${backend.gpus.join(', ')}; ${describeDtype(chosenDtype)}\n`));
    }
    progress.start(chosen.deviceCount, 'load');
    let ready = 0;
    const engine = await createInferenceEngine({
      model,
      ...(chosen.plan ? { plan: chosen.plan } : {}),
      policy,
      backend: backend.backend,
      dtype,
      // a backend module creates its devices in worker threads, even for one device
      ...(backend.name === 'cuda' ? { execution: 'workers' as const } : {}),
      maxBatch: 1,
      maxPositions,
      graphSteps: flags.graphSteps,
      onProgress: (event) => {
        if (event.phase === 'ready') progress.update(++ready);
      },
    });
    progress.stop();
    try {
      if (!quiet) process.stdout.write(stylesFor().dim(flags.prompt));
      const figures = await runWorkload({
        engine,
        prompts: [flags.prompt],
        generate: {
          maxTokens: flags.maxTokens,
          temperature: flags.temperature,
          topP: flags.topP,
          seed: flags.seed,
          ...(flags.stop ? { stop: flags.stop } : {}),
        },
        ...(quiet ? {} : { onChunk: (chunk) => process.stdout.write(chunk.text) }),
      });
      const result = figures.results[0]!;
      if (quiet) {
        printJson({
          model: model.config.name,
          randomWeights: model.randomWeights,
          backend: backend.name === 'cuda' ? { name: 'cuda', gpus: backend.gpus } : { name: 'cpu' },
          dtype,
          policy: { name: policy.name, settings: policy.settings },
          plan: chosen.plan ?? null,
          prompt: flags.prompt,
          promptTokens: result.promptTokenIds.length,
          text: result.text,
          tokenIds: result.tokenIds,
          finishReason: result.finishReason,
          keptTokens: result.keptTokens,
          devices: figures.devices,
          tokensPerSecond: figures.tokensPerSecond,
          decodeTokensPerSecond: figures.decodeTokensPerSecond,
          prefillSeconds: figures.prefillSeconds,
          decodeSeconds: figures.decodeSeconds,
        });
        return;
      }
      process.stdout.write('\n');
      process.stderr.write(
        `\n${deviceTable(figures.devices)}\n${result.tokenIds.length} tokens (${result.finishReason}), ` +
          `${style.bold(formatNumber(figures.decodeTokensPerSecond))} tokens/s decode, ` +
          `${formatNumber(figures.tokensPerSecond)} tokens/s overall, prefill ${formatNumber(figures.prefillSeconds)} s\n`,
      );
    } finally {
      await engine.dispose();
    }
  } finally {
    model.close();
  }
}
