/**
 * `fairkv generate`: generates text from a prompt on one or several CPU devices (worker threads),
 * under a compression policy and a placement plan, streaming the text; then reports per-device KV
 * memory and tokens per second.
 *
 * @packageDocumentation
 */
import { createInferenceEngine } from '@fairkv/runtime';
import { type Command, Option } from 'commander';
import { InputError } from '../cli-error.js';
import { addExamples, printJson, printWarnings } from '../command-help.js';
import { deviceTable } from '../device-report.js';
import { choosePlan } from '../engine-plan.js';
import { describeModel, loadModelChoice } from '../model-source.js';
import { integer, integerAtLeast, numberInRange } from '../option-parsers.js';
import { type CliSolverName, SOLVER_NAMES } from '../placement-run.js';
import { addPolicyOptions } from '../policy-flags.js';
import { createPolicy, describePolicy, type PolicyFlags } from '../policy-spec.js';
import { runWorkload } from '../run-workload.js';
import { createProgress, formatNumber, stylesFor } from '../terminal.js';

/** Backends `--backend` names; the runtime drives `cpu` today (`auto` picks it). */
export const BACKEND_CHOICES = ['auto', 'cpu', 'cuda', 'webgpu'] as const;

interface GenerateFlags extends PolicyFlags {
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

async function runGenerate(flags: GenerateFlags): Promise<void> {
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

/** Registers `fairkv generate` on the program. */
export function registerGenerateCommand(program: Command): Command {
  const command = program
    .command('generate')
    .summary('generate text on sharded CPU devices under a compression policy')
    .description(
      'Generate text from a prompt, streaming it to stdout; with --devices the model is sharded over CPU ' +
        'worker threads by a placement plan (--plan file, or --solver with --profile or a profile measured ' +
        'on the prompt). At the end, per-device KV memory and tokens/s go to stderr.',
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
    .option('--devices <n>', "CPU devices (worker threads); default 1, or the plan's", integerAtLeast(1))
    .option('--plan <plan.json>', 'placement plan to shard the model by')
    .addOption(new Option('--solver <name>', 'solve a plan for --devices with this solver').choices(SOLVER_NAMES))
    .option('--profile <spec>', 'head-load profile for --solver (default: measured on the prompt with the policy)')
    .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('auto'))
    .option('--json', 'print one JSON object (text, tokens, per-device figures) instead of streaming')
    .action(async (flags: GenerateFlags) => runGenerate(flags));
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
