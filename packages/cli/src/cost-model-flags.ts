/**
 * The cost model's two hardware constants as flags, shared by `plan` and `bench`: what a calibration
 * on measured steps gives (docs/cost-model.md).
 *
 * @packageDocumentation
 */
import { describeValue } from '@fairkv/core';
import type { PlacementOptions } from '@fairkv/placement';
import type { Command } from 'commander';
import { InputError, UsageError } from './cli-error.js';
import { readTextFile } from './files.js';
import { numberInRange } from './option-parsers.js';

/** The parsed flags. */
export interface CostModelFlags {
  bandwidthEfficiency?: number;
  /** Microseconds. */
  layerOverhead?: number;
  /** A JSON file with both constants (`fairkv bench --calibrate` output, or a bench/cuda-decode-e2e calibration). */
  calibration?: string;
}

/**
 * Adds `--bandwidth-efficiency` and `--layer-overhead` to a command; `prefix` starts their help (e.g.
 * `predictions: ` where the command also measures).
 */
export function addCostModelOptions(command: Command, prefix = ''): Command {
  return command
    .option(
      '--bandwidth-efficiency <f>',
      `${prefix}fraction of the devices' nominal memory bandwidth the kernels reach, in (0, 1] (default 1; fairkv's CUDA backend on H100 measured 0.84-0.99)`,
      numberInRange(0, 1, true),
    )
    .option(
      '--layer-overhead <us>',
      `${prefix}fixed time per layer and device in microseconds: launches, norms, RoPE, residual adds (default 10; fairkv's CUDA backend on H100 measured 146-243)`,
      numberInRange(0, Number.POSITIVE_INFINITY),
    )
    .option(
      '--calibration <file>',
      `${prefix}both constants from a JSON file: what \`fairkv bench --calibrate\` wrote (fitted on the model and GPUs to plan for), or a bench/cuda-decode-e2e calibration`,
    );
}

/**
 * The two constants of a calibration file: `calibration.{bandwidthEfficiency, layerOverheadSeconds}` of a
 * `fairkv bench --calibrate` result, or the same two fields at the top level (bench/cuda-decode-e2e's
 * `calibrate` output).
 * @throws InputError naming the file and what is missing or out of range (exit 2).
 */
export function readCalibration(
  path: string,
): Required<Pick<PlacementOptions, 'bandwidthEfficiency' | 'layerOverheadSeconds'>> {
  const text = readTextFile(path, '--calibration');
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new InputError(`--calibration ${path}: not valid JSON (${(error as Error).message})`);
  }
  const record = (value: unknown) =>
    typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  const top = record(document);
  if (top && 'calibration' in top && top.calibration === null) {
    throw new InputError(`--calibration ${path}: that bench ran without --calibrate (its calibration is null)`);
  }
  const source = record(top?.calibration) ?? top;
  const efficiency = source?.bandwidthEfficiency;
  const overhead = source?.layerOverheadSeconds;
  if (typeof efficiency !== 'number' || !(efficiency > 0 && efficiency <= 1)) {
    throw new InputError(
      `--calibration ${path}: bandwidthEfficiency: expected a number in (0, 1], got ${describeValue(efficiency)} ` +
        '(write one with `fairkv bench --calibrate`)',
    );
  }
  if (typeof overhead !== 'number' || !(Number.isFinite(overhead) && overhead >= 0)) {
    throw new InputError(
      `--calibration ${path}: layerOverheadSeconds: expected a finite number >= 0, got ${describeValue(overhead)}`,
    );
  }
  return { bandwidthEfficiency: efficiency, layerOverheadSeconds: overhead };
}

/**
 * The placement options the flags set (none when no flag is given).
 * @throws UsageError for `--calibration` beside either constant; InputError for a bad calibration file.
 */
export function costModelOptions(
  flags: CostModelFlags,
): Pick<PlacementOptions, 'bandwidthEfficiency' | 'layerOverheadSeconds'> {
  if (flags.calibration !== undefined) {
    if (flags.bandwidthEfficiency !== undefined || flags.layerOverhead !== undefined) {
      throw new UsageError('--calibration sets both constants: drop --bandwidth-efficiency and --layer-overhead');
    }
    return readCalibration(flags.calibration);
  }
  return {
    ...(flags.bandwidthEfficiency !== undefined ? { bandwidthEfficiency: flags.bandwidthEfficiency } : {}),
    ...(flags.layerOverhead !== undefined ? { layerOverheadSeconds: flags.layerOverhead * 1e-6 } : {}),
  };
}
