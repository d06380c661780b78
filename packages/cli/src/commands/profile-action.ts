/**
 * The work behind `fairkv profile`: measures a model's head-load profile: runs the prefill of every prompt with a
 * compression policy and aggregates the tokens each (layer, kv head) keeps (mean, p90, max) into the
 * HeadLoadProfile document that `fairkv plan --profile` reads.
 *
 * @packageDocumentation
 */
import { type HeadLoadProfile, ValidationError } from '@fairkv/core';
import { profileHeadLoads } from '@fairkv/runtime';
import { chooseDtype, clusterFor, profileBackendOf, resolveBackend } from '../backend-choice.js';
import { UsageError, withContext } from '../cli-error.js';
import type { BACKEND_CHOICES, DtypeChoice } from '../cli-names.js';
import { printJson } from '../command-help.js';
import { contiguousProfileDevices, describeProfileDevices, type ProfileDevices } from '../engine-plan.js';
import { writeTextFile } from '../files.js';
import { describeModel, loadModelChoice } from '../model-source.js';
import { createPolicy, describePolicy, type PolicyFlags } from '../policy-spec.js';
import { readPrompts } from '../prompts-file.js';
import { createProgress, formatNumber, renderTable } from '../terminal.js';

/** The flags of `fairkv profile`, as commander parsed them. */
export interface ProfileFlags extends PolicyFlags {
  model?: string;
  prompts: string;
  out?: string;
  newTokens: number;
  context?: number;
  backend: (typeof BACKEND_CHOICES)[number];
  devices: number;
  dtype: DtypeChoice;
  cluster?: string;
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

/** The action of the command (loaded on demand). */
export async function runProfile(flags: ProfileFlags): Promise<void> {
  const prompts = readPrompts(flags.prompts);
  const choice = await loadModelChoice(flags.model);
  const { model } = choice;
  try {
    const policy = createPolicy(flags, model.config);
    if (!flags.json && flags.out) process.stderr.write(`${describeModel(choice)}\n`);
    const backend = await resolveBackend(flags.backend, flags.devices);
    if (flags.cluster && backend.name === 'cpu' && flags.devices === 1) {
      throw new UsageError('--cluster applies to --devices above 1 or --backend cuda (one CPU device is not sharded)');
    }
    const { dtype } = chooseDtype(flags.dtype, backend, model);
    // one CPU device: the prefills run in this thread; otherwise on device workers under the contiguous plan
    let devices: ProfileDevices | undefined;
    if (backend.name === 'cuda' || flags.devices > 1) {
      const cluster = clusterFor(backend, flags.cluster, flags.devices, "the sharding's memory check");
      devices = await contiguousProfileDevices(profileBackendOf(backend, dtype), {
        model: model.config,
        cluster,
        batch: 1,
        maxTokens: flags.newTokens,
      });
    }
    const where = devices ? `; ${describeProfileDevices(devices)}` : dtype === 'f32' ? '' : `; ${dtype}`;
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
        source: `measured on ${prompts.length} prompts of ${flags.prompts} (${model.config.name}, ${describePolicy(policy)}${where})`,
        onProgress: (done) => progress.update(done),
        dtype,
        ...(devices ? { backend: devices.backend, plan: devices.plan, execution: devices.execution } : {}),
      });
    } catch (error) {
      // a prompt the model cannot take (`prompts[i]: ...`) is the file's fault; a device's failure is not
      throw error instanceof ValidationError && error.message.startsWith('prompts')
        ? withContext(error, '--prompts')
        : error;
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
