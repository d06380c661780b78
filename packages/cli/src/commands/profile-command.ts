/**
 * `fairkv profile`: measures a model's head-load profile: runs the prefill of every prompt with a
 * compression policy and aggregates the tokens each (layer, kv head) keeps (mean, p90, max) into the
 * HeadLoadProfile document that `fairkv plan --profile` reads.
 *
 * @packageDocumentation
 */
import type { HeadLoadProfile } from '@fairkv/core';
import { profileHeadLoads } from '@fairkv/runtime';
import type { Command } from 'commander';
import { withContext } from '../cli-error.js';
import { addExamples, printJson } from '../command-help.js';
import { writeTextFile } from '../files.js';
import { describeModel, loadModelChoice } from '../model-source.js';
import { integerAtLeast } from '../option-parsers.js';
import { addPolicyOptions } from '../policy-flags.js';
import { createPolicy, describePolicy, type PolicyFlags } from '../policy-spec.js';
import { readPrompts } from '../prompts-file.js';
import { createProgress, formatNumber, renderTable } from '../terminal.js';

interface ProfileFlags extends PolicyFlags {
  model?: string;
  prompts: string;
  out?: string;
  newTokens: number;
  context?: number;
  json?: boolean;
}

/** Per-layer summary rows: mean kept tokens, least and most loaded head, max/mean. */
export function profileSummary(profile: HeadLoadProfile): string {
  const rows = profile.mean.map((row, layer) => {
    const mean = row.reduce((sum, value) => sum + value, 0) / row.length;
    const max = Math.max(...row);
    return [
      String(layer),
      formatNumber(mean),
      formatNumber(Math.min(...row)),
      formatNumber(max),
      mean > 0 ? (max / mean).toFixed(2) : '1.00',
    ];
  });
  return renderTable(['layer', 'mean kept', 'min head', 'max head', 'max/mean'], rows);
}

async function runProfile(flags: ProfileFlags): Promise<void> {
  const prompts = readPrompts(flags.prompts);
  const choice = await loadModelChoice(flags.model);
  const { model } = choice;
  try {
    const policy = createPolicy(flags, model.config);
    if (!flags.json && flags.out) process.stderr.write(`${describeModel(choice)}\n`);
    const progress = createProgress(flags.json === true || !flags.out);
    progress.start(prompts.length, 'profile');
    let profile: HeadLoadProfile;
    try {
      profile = await profileHeadLoads({
        model,
        prompts,
        policy,
        generatedTokens: flags.newTokens,
        ...(flags.context !== undefined ? { contextLength: flags.context } : {}),
        source: `measured on ${prompts.length} prompts of ${flags.prompts} (${model.config.name}, ${describePolicy(policy)})`,
        onProgress: (done) => progress.update(done),
      });
    } catch (error) {
      throw withContext(error, '--prompts');
    } finally {
      progress.stop();
    }
    const document = `${JSON.stringify(profile, null, 2)}\n`;
    if (flags.out) writeTextFile(flags.out, document, '--out');
    if (flags.json || !flags.out) {
      printJson(profile);
      return;
    }
    process.stdout.write(
      `${describePolicy(policy)} on ${prompts.length} prompts, context ${profile.contextLength}\n\n${profileSummary(profile)}\n\nwrote ${flags.out}\n`,
    );
  } finally {
    model.close();
  }
}

/** Registers `fairkv profile` on the program. */
export function registerProfileCommand(program: Command): Command {
  const command = program
    .command('profile')
    .summary("measure a model's per-head KV load under a compression policy")
    .description(
      'Run the prefill of every prompt with a compression policy and write the head-load profile: the ' +
        'tokens each (layer, kv head) keeps, as mean, p90 and max over the prompts. Without --out the ' +
        'profile JSON goes to stdout.',
    )
    .option(
      '--model <path>',
      'GGUF file or Hugging Face folder (default: $FAIRKV_MODEL, else the embedded random-weight model)',
    );
  addPolicyOptions(command, 'full')
    .requiredOption('--prompts <file>', 'one prompt per line, or JSON Lines of strings or {"prompt": ...} objects')
    .option('--out <profile.json>', 'write the profile here (default: stdout)')
    .option(
      '--new-tokens <n>',
      'tokens each request generates after its prompt, added to every head',
      integerAtLeast(0),
      0,
    )
    .option(
      '--context <n>',
      'context recorded in the profile (default: longest prompt + new tokens)',
      integerAtLeast(1),
    )
    .option('--json', 'print the profile JSON even with --out')
    .action(async (flags: ProfileFlags) => runProfile(flags));
  return addExamples(command, [
    {
      command:
        'fairkv profile --model stories260K.gguf --policy ada-kv --budget 32 --prompts prompts.txt --out profile.json',
      description: 'measure Ada-KV head loads of stories260K on a prompt file',
    },
    {
      command: 'fairkv profile --policy snapkv --budget 16 --prompts prompts.jsonl --new-tokens 64 > profile.json',
      description: 'profile the default model; every head also holds 64 generated tokens',
    },
  ]);
}
