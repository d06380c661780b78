/**
 * Probe-loading of the CUDA addon in a child process. A broken driver, a missing library or a
 * crash inside CUDA initialisation kills the child, not the host; the host loads the addon only
 * after the child reported at least one usable device. The result is cached per process.
 *
 * @packageDocumentation
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type AddonBuild, readAddonBuild } from './addon-build.js';
import { addonPath } from './addon-path.js';
import type { NativeDeviceProperties, NativeLibraryInfo, NativeProbeResult } from './native.js';

/**
 * What the probe found: usable devices, or the one-line reason the backend is unavailable; `build` is
 * the addon's build record where it has one (see {@link readAddonBuild}).
 */
export type CudaProbeResult =
  | {
      available: true;
      addonPath: string;
      runtimeVersion: number;
      driverVersion: number;
      devices: NativeDeviceProperties[];
      libraries: NativeLibraryInfo;
      build?: AddonBuild;
    }
  | { available: false; addonPath: string; reason: string; probe?: NativeProbeResult; build?: AddonBuild };

/** The script the child runs: load the addon, query devices and libraries, print JSON. */
const PROBE_SCRIPT = `
const addon = require(process.argv[1]);
const result = { probe: addon.probe() };
if (result.probe.deviceCount > 0) {
  result.devices = [];
  for (let device = 0; device < result.probe.deviceCount; device++) result.devices.push(addon.deviceProperties(device));
  result.libraries = addon.libraryInfo();
}
process.stdout.write(JSON.stringify(result));
`;

let cached: CudaProbeResult | undefined;

/** Options of {@link probeCuda}. */
export interface ProbeOptions {
  /** Probe again instead of returning the cached result. */
  refresh?: boolean;
  /** Milliseconds before the child is killed (default 60 000: first CUDA init can be slow). */
  timeoutMs?: number;
}

/**
 * Loads the addon in a child Node process and asks it for the device count, device properties and
 * the run-time libraries (cuBLAS, NCCL). Never throws.
 */
export function probeCuda(options: ProbeOptions = {}): CudaProbeResult {
  if (cached !== undefined && options.refresh !== true) return cached;
  const result = runProbe(options.timeoutMs ?? 60_000);
  const build = readAddonBuild(result.addonPath);
  cached = build === undefined ? result : { ...result, build };
  return cached;
}

function runProbe(timeoutMs: number): CudaProbeResult {
  const path = addonPath();
  if (!existsSync(path)) {
    return {
      available: false,
      addonPath: path,
      reason: `the addon is not built (${path} is missing; run \`npm run build -w @fairkv/kernels-cuda\` where nvcc is installed)`,
    };
  }
  const child = spawnSync(process.execPath, ['-e', PROBE_SCRIPT, path], {
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, NCCL_NVLS_ENABLE: process.env.NCCL_NVLS_ENABLE ?? '0' },
  });
  const stderr = (child.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
  if (child.error !== undefined) {
    return { available: false, addonPath: path, reason: `the probe process failed: ${child.error.message}` };
  }
  if (child.signal !== null) {
    return {
      available: false,
      addonPath: path,
      reason: `the probe process was killed by ${child.signal}${stderr ? `: ${stderr}` : ''}`,
    };
  }
  if (child.status !== 0) {
    return {
      available: false,
      addonPath: path,
      reason: `loading the addon failed (exit code ${child.status})${stderr ? `: ${stderr}` : ''}`,
    };
  }
  let parsed: { probe: NativeProbeResult; devices?: NativeDeviceProperties[]; libraries?: NativeLibraryInfo };
  try {
    parsed = JSON.parse(child.stdout);
  } catch {
    return { available: false, addonPath: path, reason: `the probe printed no JSON: ${child.stdout.slice(0, 200)}` };
  }
  const { probe } = parsed;
  if (probe.errorCode !== 0) {
    return {
      available: false,
      addonPath: path,
      probe,
      reason: `${probe.errorName} (${probe.errorCode}): ${probe.errorMessage}`,
    };
  }
  if (probe.deviceCount === 0 || parsed.devices === undefined || parsed.libraries === undefined) {
    return { available: false, addonPath: path, probe, reason: 'no CUDA device found' };
  }
  return {
    available: true,
    addonPath: path,
    runtimeVersion: probe.runtimeVersion,
    driverVersion: probe.driverVersion,
    devices: parsed.devices,
    libraries: parsed.libraries,
  };
}
