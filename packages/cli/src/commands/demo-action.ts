/**
 * The work behind `fairkv demo` (what `npm start` runs): the FairKV story end to end on this machine. A model (the
 * embedded random-weight default, or `--model` / `FAIRKV_MODEL`) generates on several CPU devices
 * (worker threads) under a compression policy, first with the contiguous tensor-parallel plan, then
 * with a Fair-Copying plan solved from the head loads the first run measured; per-device KV memory
 * and tokens/s are shown for both.
 *
 * @packageDocumentation
 */
import type { CompressionPolicy } from '@fairkv/compress';
import { createCluster, type HeadLoadProfile, type Plan } from '@fairkv/core';
import { predictPlan, solvePlacement } from '@fairkv/placement';
import { createInferenceEngine, type LoadedModel } from '@fairkv/runtime';
import { InputError, withContext } from '../cli-error.js';
import { printJson, printWarnings } from '../command-help.js';
import { demoPrompts, syntheticGates } from '../demo-prompts.js';
import { type DemoRun, renderDemoReport } from '../demo-report.js';
import { kvBalance } from '../device-report.js';
import { uniformProfile } from '../engine-plan.js';
import { profileFromResults } from '../measured-profile.js';
import { describeModel, loadModelChoice } from '../model-source.js';
import { copyCount } from '../placement-run.js';
import { createPolicy, describePolicy, type PolicyFlags } from '../policy-spec.js';
import { runWorkload, type WorkloadFigures } from '../run-workload.js';
import { stylesFor } from '../terminal.js';

/** The flags of `fairkv demo`, as commander parsed them. */
export interface DemoFlags extends PolicyFlags {
  model?: string;
  devices: number;
  requests: number;
  maxTokens: number;
  json?: boolean;
}

/** Fills the demo's defaults: short-prompt DuoAttention (sink 4, budget 20) or a 24-token budget. */
function demoPolicyFlags(flags: DemoFlags): PolicyFlags {
  const policy = flags.policy ?? 'duo-attention';
  const filled: PolicyFlags = { ...flags, policy };
  if (policy === 'duo-attention') {
    filled.sink ??= 4;
    filled.budget ??= 20;
  } else if (!['full', 'h2o', 'streaming-llm'].includes(policy)) {
    filled.budget ??= 24;
  }
  return filled;
}

async function runPlan(
  model: LoadedModel,
  policy: CompressionPolicy,
  plan: Plan,
  prompts: string[],
  flags: DemoFlags,
  onText: ((text: string) => void) | undefined,
): Promise<WorkloadFigures> {
  const longest = Math.max(...prompts.map((prompt) => model.tokenizer.encode(prompt).length));
  const engine = await createInferenceEngine({
    model,
    plan,
    policy,
    execution: 'workers',
    maxBatch: prompts.length,
    maxPositions: Math.min(model.config.maxContext, longest + flags.maxTokens + 1),
  });
  try {
    return await runWorkload({
      engine,
      prompts,
      generate: { maxTokens: flags.maxTokens, stopAtEos: false },
      ...(onText ? { onChunk: (chunk) => onText(chunk.text) } : {}),
    });
  } finally {
    await engine.dispose();
  }
}

/** The action of the command (loaded on demand). */
export async function runDemo(flags: DemoFlags): Promise<void> {
  const started = performance.now();
  const quiet = flags.json === true;
  const style = stylesFor();
  const out = (text: string) => {
    if (!quiet) process.stdout.write(text);
  };
  const choice = await loadModelChoice(flags.model);
  const { model } = choice;
  try {
    const config = model.config;
    const policyFlags = demoPolicyFlags(flags);
    const gates =
      policyFlags.policy === 'duo-attention' && !policyFlags.gates
        ? syntheticGates(config.layerCount, config.kvHeadCount)
        : undefined;
    const policy = createPolicy(policyFlags, config, gates);
    const prompts = demoPrompts(flags.requests);
    let cluster: ReturnType<typeof createCluster>;
    try {
      cluster = createCluster('cpu', flags.devices);
    } catch (error) {
      throw withContext(error, `--devices ${flags.devices}`);
    }
    if (flags.devices > config.kvHeadCount) {
      throw new InputError(
        `--devices ${flags.devices}: the contiguous plan puts whole kv heads on devices, and ${config.name} has ${config.kvHeadCount} per layer; use at most ${config.kvHeadCount}`,
      );
    }
    out(`${style.bold('fairkv demo')}: FairKV head placement on ${flags.devices} CPU devices (worker threads)\n`);
    out(`${describeModel(choice)}\n`);
    out(
      `policy: ${describePolicy(policy)}${gates ? ' -- pass --gates <full_attention_heads.tsv> for trained gates' : ''}\n`,
    );
    out(
      `workload: ${prompts.length} request${prompts.length === 1 ? '' : 's'} at once, ${flags.maxTokens} new tokens each, greedy\n`,
    );
    // Plans are balanced for serving at scale: the largest batch each fits in the cpu preset's memory per
    // device, where KV dominates (FairKV's regime). The demo then runs a few requests with them.
    const request = (profile: HeadLoadProfile) => ({
      model: config,
      profile,
      cluster,
      batch: 'max' as const,
      dtype: 'f32' as const,
    });
    const contiguous = solvePlacement({
      ...request(uniformProfile(config, Math.min(config.maxContext, flags.maxTokens + 1))),
      solver: 'contiguous',
    });
    out(`\n${style.cyan('1/2 contiguous plan')} (standard tensor parallelism: kv heads split in index order)\n`);
    out(style.dim(`> ${prompts[0]}`));
    const first = await runPlan(model, policy, contiguous.plan, prompts, flags, quiet ? undefined : out);
    const profile = profileFromResults(first.results, {
      policy,
      generatedTokens: flags.maxTokens,
      contextLength: Math.min(
        config.maxContext,
        Math.max(...first.results.map((r) => r.promptTokenIds.length)) + flags.maxTokens,
      ),
      model: config.name,
      source: `kept tokens of ${prompts.length} demo requests under the contiguous plan`,
    });
    const fairCopy = solvePlacement({ ...request(profile), solver: 'fair-copy' });
    printWarnings(fairCopy.warnings);
    out(
      `\n\n${style.cyan('2/2 fair-copy plan')} (heads re-placed and heavy heads copied, from the loads run 1 measured)\n`,
    );
    out(style.dim(`> ${prompts[0]}`));
    const second = await runPlan(model, policy, fairCopy.plan, prompts, flags, quiet ? undefined : out);
    const runs: DemoRun[] = [
      {
        solver: 'contiguous',
        plan: contiguous.plan,
        figures: first,
        predicted: predictPlan(contiguous.plan, request(profile)),
      },
      { solver: 'fair-copy', plan: fairCopy.plan, figures: second, predicted: fairCopy.predicted },
    ];
    const sameText = first.results.every((result, index) => result.text === second.results[index]!.text);
    const seconds = (performance.now() - started) / 1000;
    if (quiet) {
      printJson({
        model: config.name,
        modelPath: model.path,
        randomWeights: model.randomWeights,
        policy: { name: policy.name, settings: policy.settings, syntheticGates: gates !== undefined },
        devices: flags.devices,
        requests: prompts.length,
        maxTokens: flags.maxTokens,
        profile,
        runs: runs.map((run) => ({
          solver: run.solver,
          plan: run.plan,
          copies: copyCount(run.plan),
          devices: run.figures.devices,
          kvBalance: kvBalance(run.figures.devices),
          decodeTokensPerSecond: run.figures.decodeTokensPerSecond,
          tokensPerSecond: run.figures.tokensPerSecond,
          wallSeconds: run.figures.wallSeconds,
          predictedTokensPerSecond: run.predicted.throughputTokensPerSecond,
          texts: run.figures.results.map((result) => result.text),
        })),
        sameText,
        seconds,
      });
      return;
    }
    out(`\n${renderDemoReport(runs, { sameText, seconds, randomWeights: model.randomWeights })}`);
  } finally {
    model.close();
  }
}
