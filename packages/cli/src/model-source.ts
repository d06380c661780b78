/**
 * Resolving `--model`: a model file or folder to run (GGUF, Hugging Face folder), the embedded default
 * model, or — for planning, which needs only the architecture — a preset name or a config.json.
 *
 * @packageDocumentation
 */
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { getModelPreset, isModelPresetName, MODEL_PRESET_NAMES, type ModelConfig, parseHfConfig } from '@fairkv/core';
import { type LoadedModel, loadModel } from '@fairkv/runtime';
import { InputError, withContext } from './cli-error.js';
import { ensureDefaultModel } from './default-model.js';
import { assertExists, parseJsonFile, readTextFile } from './files.js';

/** A model to run and where it came from. */
export interface ModelChoice {
  model: LoadedModel;
  /** How the model was chosen: `--model`, `FAIRKV_MODEL` or `default`. */
  origin: '--model' | 'FAIRKV_MODEL' | 'default';
}

/**
 * Loads the model to run: `--model`, else `$FAIRKV_MODEL`, else the embedded default (random weights).
 * @throws InputError / FormatError naming the flag (or variable) and the file (exit 2).
 */
export async function loadModelChoice(flagValue: string | undefined): Promise<ModelChoice> {
  const fromEnv = process.env.FAIRKV_MODEL;
  const origin: ModelChoice['origin'] = flagValue ? '--model' : fromEnv ? 'FAIRKV_MODEL' : 'default';
  const path = flagValue ?? (fromEnv || (await ensureDefaultModel()));
  assertExists(path, origin === 'default' ? 'default model' : origin);
  try {
    return { model: await loadModel(path), origin };
  } catch (error) {
    throw withContext(error, `${origin} ${path}`);
  }
}

/** One line naming the model, with a warning when its weights are random. */
export function describeModel(choice: ModelChoice): string {
  const { model } = choice;
  const c = model.config;
  const shape = `${c.layerCount} layers, ${c.queryHeadCount} query / ${c.kvHeadCount} kv heads, head dim ${c.headDim}`;
  const random = model.randomWeights
    ? ' -- RANDOM WEIGHTS (generated fixture: the text is gibberish; pass --model or set FAIRKV_MODEL for a real model)'
    : '';
  return `model: ${c.name} (${model.format}, ${shape}) from ${model.path}${random}`;
}

/**
 * The architecture `plan` works with: a preset name (`llama-3.1-8b`...), a Hugging Face config.json,
 * a GGUF file or a Hugging Face model folder.
 * @throws InputError naming `--model` and the file or the unknown preset (exit 2).
 */
export async function resolveModelConfig(spec: string): Promise<ModelConfig> {
  if (isModelPresetName(spec)) return getModelPreset(spec);
  let isDirectory: boolean;
  try {
    isDirectory = statSync(spec).isDirectory();
  } catch {
    throw new InputError(
      `--model ${spec}: not a preset (${MODEL_PRESET_NAMES.join(', ')}) and no such file or directory`,
    );
  }
  if (!isDirectory && spec.endsWith('.json')) {
    const json = parseJsonFile(readTextFile(spec, '--model'), spec, '--model');
    try {
      return parseHfConfig(json, basename(spec, '.json') === 'config' ? undefined : basename(spec, '.json'));
    } catch (error) {
      throw withContext(error, `--model ${spec}`);
    }
  }
  let model: LoadedModel;
  try {
    model = await loadModel(spec);
  } catch (error) {
    throw withContext(error, `--model ${spec}`);
  }
  const config = model.config;
  model.close();
  return config;
}
