/**
 * `fairkv inspect`: which backends work here, a model's architecture and sizes, a plan's validation
 * report and per-device summary.
 *
 * @packageDocumentation
 */

import { statSync } from 'node:fs';
import {
  CLUSTER_PRESET_NAMES,
  createCluster,
  DTYPES,
  type ModelConfig,
  modelSizes,
  type Plan,
  type PlanValidationContext,
  validatePlan,
} from '@fairkv/core';
import { type LoadedModel, loadModel } from '@fairkv/runtime';
import { type Command, Option } from 'commander';
import { probeBackends } from '../backend-probe.js';
import { InputError, withContext } from '../cli-error.js';
import { addExamples, printJson } from '../command-help.js';
import { parseJsonFile, readTextFile } from '../files.js';
import { resolveModelConfig } from '../model-source.js';
import { integerAtLeast } from '../option-parsers.js';
import { copyCount } from '../placement-run.js';
import { formatBytes, renderTable, stylesFor } from '../terminal.js';

async function inspectBackends(flags: { json?: boolean }): Promise<void> {
  const statuses = await probeBackends();
  if (flags.json) {
    printJson({ backends: statuses });
    return;
  }
  const style = stylesFor();
  const rows = statuses.map((status) => [
    status.name,
    status.available ? style.green('yes') : style.yellow('no'),
    status.runtimeSupported ? 'yes' : 'not yet',
    status.detail,
  ]);
  process.stdout.write(
    `${renderTable(['backend', 'available', 'runtime', 'detail'], rows, ['left', 'left', 'left', 'left'])}\n`,
  );
}

function sizesReport(config: ModelConfig): Record<string, { weightBytes: number; kvBytesPerToken: number }> {
  return Object.fromEntries(
    DTYPES.map((dtype) => {
      const sizes = modelSizes(config, dtype);
      return [dtype, { weightBytes: sizes.totalWeightBytes, kvBytesPerToken: sizes.kvBytesPerToken }];
    }),
  );
}

function tensorReport(model: LoadedModel): { count: number; storedBytes: number; types: Record<string, number> } {
  const types: Record<string, number> = {};
  let storedBytes = 0;
  let count = 0;
  for (const name of model.weights.names) {
    const info = model.weights.info(name);
    if (info.tiedTo) continue;
    count++;
    storedBytes += info.byteLength;
    types[info.storedType] = (types[info.storedType] ?? 0) + 1;
  }
  return { count, storedBytes, types };
}

async function inspectModel(spec: string, flags: { json?: boolean }): Promise<void> {
  let isPath = false;
  try {
    isPath = statSync(spec).isDirectory() || !spec.endsWith('.json');
  } catch {
    isPath = false;
  }
  let loaded: LoadedModel | undefined;
  let config: ModelConfig;
  if (isPath) {
    try {
      loaded = await loadModel(spec);
    } catch (error) {
      throw withContext(error, `model ${spec}`);
    }
    config = loaded.config;
  } else {
    config = await resolveModelConfig(spec);
  }
  try {
    const tensors = loaded ? tensorReport(loaded) : undefined;
    const sizes = sizesReport(config);
    if (flags.json) {
      printJson({
        source: spec,
        format: loaded?.format ?? 'config',
        randomWeights: loaded?.randomWeights ?? false,
        description: loaded?.description ?? null,
        config,
        tokenizer: loaded ? { kind: loaded.tokenizer.kind, vocabSize: loaded.tokenizer.vocabSize } : null,
        tensors: tensors ?? null,
        sizes,
      });
      return;
    }
    const style = stylesFor();
    const lines = [
      `${style.bold(config.name)} (${loaded ? `${loaded.format}, ${spec}` : spec})`,
      ...(loaded?.randomWeights
        ? [style.yellow('RANDOM WEIGHTS: a generated fixture model; its text is gibberish')]
        : []),
      '',
      renderTable(
        ['field', 'value'],
        [
          ['layers', String(config.layerCount)],
          ['hidden size', String(config.hiddenSize)],
          ['query heads', String(config.queryHeadCount)],
          ['kv heads', String(config.kvHeadCount)],
          ['head dim', String(config.headDim)],
          ['ffn size', String(config.ffnSize)],
          ['vocab', String(config.vocabSize)],
          ['max context', String(config.maxContext)],
          [
            'rope',
            `theta ${config.ropeTheta}, ${config.ropeLayout}${config.ropeScaling ? `, ${config.ropeScaling.type} scaling` : ''}`,
          ],
          ['tied embeddings', String(config.tieWordEmbeddings)],
          ...(loaded ? [['tokenizer', `${loaded.tokenizer.kind}, ${loaded.tokenizer.vocabSize} tokens`]] : []),
          ...(tensors
            ? [
                [
                  'tensors',
                  `${tensors.count} (${Object.entries(tensors.types)
                    .map(([type, n]) => `${n} ${type}`)
                    .join(', ')})`,
                ],
                ['stored bytes', formatBytes(tensors.storedBytes)],
              ]
            : []),
        ],
        ['left', 'left'],
      ),
      '',
      renderTable(
        ['dtype', 'weights', 'KV per token'],
        Object.entries(sizes).map(([dtype, size]) => [
          dtype,
          formatBytes(size.weightBytes),
          formatBytes(size.kvBytesPerToken),
        ]),
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    loaded?.close();
  }
}

interface InspectPlanFlags {
  model?: string;
  cluster?: string;
  devices?: number;
  json?: boolean;
}

async function inspectPlan(path: string, flags: InspectPlanFlags): Promise<void> {
  const json = parseJsonFile(readTextFile(path, 'plan'), path, 'plan');
  const context: PlanValidationContext = {};
  if (flags.model) context.model = await resolveModelConfig(flags.model);
  if (flags.cluster) {
    const devices = flags.devices ?? (json as { deviceCount?: unknown }).deviceCount;
    if (typeof devices !== 'number')
      throw new InputError(`--cluster ${flags.cluster}: pass --devices (the plan has no deviceCount)`);
    try {
      context.cluster = createCluster(flags.cluster, devices);
    } catch (error) {
      throw withContext(error, `--devices ${devices}`);
    }
  }
  const report = validatePlan(json, context);
  const plan = json as Plan;
  const devices = report.valid
    ? Array.from({ length: plan.deviceCount }, (_, device) => {
        let replicas = 0;
        let shares = 0;
        for (const layer of plan.layers)
          for (const head of layer.heads)
            for (const replica of head.replicas) {
              if (replica.device !== device) continue;
              replicas++;
              shares += replica.share;
            }
        const predicted = plan.predicted.devices[device]!;
        return {
          device,
          replicas,
          servedHeads: shares,
          memoryBytes: predicted.memoryBytes,
          kvBytes: predicted.kvBytes,
        };
      })
    : [];
  if (flags.json) {
    printJson({ file: path, valid: report.valid, issues: report.issues, devices });
  } else {
    const style = stylesFor();
    const lines = [
      `${path}: ${report.valid ? style.green('valid') : style.red(`invalid, ${report.issues.length} issue(s)`)}`,
    ];
    for (const issue of report.issues) lines.push(`  ${issue.path}: ${issue.message}`);
    if (report.valid) {
      lines.push(
        `solver ${plan.solver}, ${plan.deviceCount} devices, ${plan.layers.length} layers, ${copyCount(plan)} copies; ` +
          `predicted ${plan.predicted.throughputTokensPerSecond.toFixed(1)} tokens/s, step ${(plan.predicted.stepTimeSeconds * 1e3).toFixed(3)} ms, max batch ${plan.predicted.maxBatch}`,
        '',
        renderTable(
          ['device', 'replicas', 'heads served', 'memory', 'KV'],
          devices.map((device) => [
            String(device.device),
            String(device.replicas),
            device.servedHeads.toFixed(2),
            formatBytes(device.memoryBytes),
            formatBytes(device.kvBytes),
          ]),
        ),
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (!report.valid) throw new InputError(`plan ${path}: invalid (${report.issues.length} issue(s), listed above)`);
}

/** Registers `fairkv inspect` and its subcommands on the program. */
export function registerInspectCommand(program: Command): Command {
  const inspect = program
    .command('inspect')
    .summary('inspect backends, a model or a plan')
    .description("Report which backends work here, a model's architecture and sizes, or a plan's validity.");
  const backends = inspect
    .command('backends')
    .description('Which backends work on this machine, why each unavailable one is not, and which the runtime drives.')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }) => inspectBackends(flags));
  addExamples(backends, [{ command: 'fairkv inspect backends', description: 'probe cpu, cuda and webgpu' }]);
  const model = inspect
    .command('model')
    .description('Architecture, tensors, bytes per dtype and KV bytes per token of a model.')
    .argument('<model>', 'GGUF file, Hugging Face folder, config.json or preset name')
    .option('--json', 'print JSON')
    .action(async (spec: string, flags: { json?: boolean }) => inspectModel(spec, flags));
  addExamples(model, [
    { command: 'fairkv inspect model stories260K.gguf', description: 'a GGUF file' },
    { command: 'fairkv inspect model llama-3.3-70b --json', description: 'sizes of a preset as JSON' },
  ]);
  const plan = inspect
    .command('plan')
    .description('Validation report (every issue, by JSON path) and per-device summary of a plan document.')
    .argument('<plan.json>', 'plan written by `fairkv plan --out`')
    .option('--model <model>', 'also check layer and kv-head counts against this model')
    .addOption(
      new Option('--cluster <preset>', 'also check predicted memory against this cluster').choices(
        CLUSTER_PRESET_NAMES,
      ),
    )
    .option('--devices <n>', "devices of --cluster (default: the plan's)", integerAtLeast(1))
    .option('--json', 'print JSON')
    .action(async (path: string, flags: InspectPlanFlags) => inspectPlan(path, flags));
  addExamples(plan, [
    { command: 'fairkv inspect plan plan.json', description: 'validate a plan and summarise its devices' },
    {
      command: 'fairkv inspect plan plan.json --model llama-3.3-70b --cluster h100-sxm-80g',
      description: 'check it against a model and 8 H100s',
    },
  ]);
  return addExamples(inspect, [
    { command: 'fairkv inspect backends', description: 'which backends work here' },
    { command: 'fairkv inspect model model.gguf', description: 'a model file' },
    { command: 'fairkv inspect plan plan.json', description: 'a plan document' },
  ]);
}
