/**
 * What `scripts/build-native.mjs` records beside the addon (`build-info.json`): the nvcc that built it
 * and the GPU targets it holds code for, so a report can say which kernels a device gets (Hopper's
 * warpgroup-MMA matmul needs `sm_90a` machine code; other GPUs of a family without their own code run
 * the PTX through the driver's JIT).
 *
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The build record of one addon binary. */
export interface AddonBuild {
  /** `nvcc --version`'s last line. */
  nvcc: string;
  /** Whether this is the host-only probe build (no kernels). */
  probeOnly: boolean;
  /** Machine-code targets (`sm_80`, `sm_90a`) then the PTX target (`compute_90`). */
  architectures: string[];
}

/**
 * Reads `build-info.json` beside `addonPath`; undefined when it is missing or not a build record (an
 * addon built by other means still loads, it just reports no targets).
 */
export function readAddonBuild(addonPath: string): AddonBuild | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(join(dirname(addonPath), 'build-info.json'), 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { nvcc, probeOnly, architectures } = parsed as Record<string, unknown>;
  if (typeof nvcc !== 'string' || typeof probeOnly !== 'boolean') return undefined;
  if (!Array.isArray(architectures) || !architectures.every((target) => typeof target === 'string')) return undefined;
  return { nvcc, probeOnly, architectures };
}

/**
 * How a device of compute capability `computeCapability` (`"9.0"`) runs this build: its own machine
 * code (`sm_90a`, `sm_90`), the closest older machine code of its major version, or the PTX compiled
 * by the driver at load time; undefined when the build holds nothing it can run.
 */
export function codeForDevice(build: AddonBuild, computeCapability: string): string | undefined {
  const [major, minor] = computeCapability.split('.').map(Number);
  if (!Number.isInteger(major) || !Number.isInteger(minor)) return undefined;
  const device = major! * 10 + minor!;
  const machine = build.architectures
    .map((target) => /^sm_(\d+)(a?)$/.exec(target))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ target: match[0], version: Number(match[1]), archSpecific: match[2] === 'a' }));
  // arch-specific code (sm_90a) runs only on exactly that capability; plain code on any later minor
  const exact = machine.find((code) => code.version === device);
  if (exact) return exact.target;
  const compatible = machine
    .filter((code) => !code.archSpecific && Math.floor(code.version / 10) === major && code.version <= device)
    .sort((a, b) => b.version - a.version)[0];
  if (compatible) return compatible.target;
  const ptx = build.architectures
    .map((target) => /^compute_(\d+)a?$/.exec(target))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => Number(match[1]))
    .filter((version) => version <= device)
    .sort((a, b) => b - a)[0];
  return ptx === undefined ? undefined : `compute_${ptx} PTX (compiled by the driver at load time)`;
}
