/**
 * The work behind `fairkv inspect`: which backends work here, a model's architecture and sizes, a plan's validation
 * report and per-device summary.
 *
 * @packageDocumentation
 */
import { statSync } from 'node:fs';
import {
  createCluster,
  DTYPES,
  type ModelConfig,
  modelSizes,
  type Plan,
  type PlanValidationContext,
  validatePlan,
} from '@fairkv/core';
import { type LoadedModel, loadModel, nativeDtype } from '@fairkv/runtime';
import { probeBackends } from '../backend-probe.js';
import { InputError, withContext } from '../cli-error.js';
import { printJson } from '../command-help.js';
import { parseJsonFile, readTextFile } from '../files.js';
import { resolveModelConfig } from '../model-source.js';
import { copyCount } from '../placement-run.js';
import { formatBytes, renderTable, stylesFor } from '../terminal.js';

/** The action of the command (loaded on demand). */
export async function inspectBackends(flags: { json?: boolean }): Promise<void> {
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

/** The action of the command (loaded on demand). */
export async function inspectModel(spec: string, flags: { json?: boolean }): Promise<void> {
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
    // what --dtype auto runs it in on GPUs
    const gpuDtype = loaded ? nativeDtype(loaded) : undefined;
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
        gpuDtype: gpuDtype ?? null,
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
                ['on GPUs', `${gpuDtype} (--dtype auto)`],
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

/** The flags of `fairkv inspect plan`, as commander parsed them. */
export interface InspectPlanFlags {
  model?: string;
  cluster?: string;
  devices?: number;
  json?: boolean;
}

/** The action of the command (loaded on demand). */
export async function inspectPlan(path: string, flags: InspectPlanFlags): Promise<void> {
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
