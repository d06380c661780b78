/**
 * The work behind `fairkv generate`: generates text from a prompt on one or several CPU devices (worker threads),
 * under a compression policy and a placement plan, streaming the text; then reports per-device KV
 * memory and tokens per second.
 *
 * @packageDocumentation
 */
import { createInferenceEngine } from '@fairkv/runtime';
import { InputError } from '../cli-error.js';
import type { BACKEND_CHOICES } from '../cli-names.js';
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
  backend: (typeof BACKEND_CHOICES)[number];
  json?: boolean;
}

/**
 * The backend the runtime will use for `--backend`.
 * @throws InputError for a backend the runtime cannot drive yet (exit 2).
 */
export function resolveBackend(name: string): 'cpu' {
  if (name === 'cpu' || name === 'auto') return 'cpu';
  throw new InputError(
    `--backend ${name}: the runtime runs models on the cpu backend only so far (the ${name} kernels are not wired into it); ` +
      'use --backend cpu or auto, and see `fairkv inspect backends`',
  );
}

/** The action of the command (loaded on demand). */
export async function runGenerate(flags: GenerateFlags): Promise<void> {
  const backend = resolveBackend(flags.backend);
  const choice = await loadModelChoice(flags.model);
  const { model } = choice;
  const quiet = flags.json === true;
  const style = stylesFor(process.stderr);
  try {
    const policy = createPolicy(flags, model.config);
    if (!quiet) process.stderr.write(`${style.dim(describeModel(choice))}\n`);
    const progress = createProgress(quiet);
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
    progress.start(chosen.deviceCount, 'load');
    let ready = 0;
    const engine = await createInferenceEngine({
      model,
      ...(chosen.plan ? { plan: chosen.plan } : {}),
      policy,
      backend,
      maxBatch: 1,
      maxPositions,
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
