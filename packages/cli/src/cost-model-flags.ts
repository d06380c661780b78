/**
 * The cost model's two hardware constants as flags, shared by `plan` and `bench`: what a calibration
 * on measured steps gives (docs/cost-model.md).
 *
 * @packageDocumentation
 */
import type { PlacementOptions } from '@fairkv/placement';
import type { Command } from 'commander';
import { numberInRange } from './option-parsers.js';

/** The parsed flags. */
export interface CostModelFlags {
  bandwidthEfficiency?: number;
  /** Microseconds. */
  layerOverhead?: number;
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
    );
}

/** The placement options the flags set (none when neither is given). */
export function costModelOptions(
  flags: CostModelFlags,
): Pick<PlacementOptions, 'bandwidthEfficiency' | 'layerOverheadSeconds'> {
  return {
    ...(flags.bandwidthEfficiency !== undefined ? { bandwidthEfficiency: flags.bandwidthEfficiency } : {}),
    ...(flags.layerOverhead !== undefined ? { layerOverheadSeconds: flags.layerOverhead * 1e-6 } : {}),
  };
}
