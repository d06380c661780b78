import { z } from 'zod';
import { ConfigError, formatIssues } from './errors.js';
import { issuesFromZod } from './json-path.js';

/** One accelerator (or CPU worker) as the cost model sees it. */
export interface DeviceSpec {
  /** Device model, e.g. `H100 SXM 80GB`. */
  name: string;
  /** Memory capacity in bytes. */
  memoryBytes: number;
  /** Peak memory bandwidth in bytes/s (decode is bandwidth-bound). */
  memoryBandwidthBytesPerSecond: number;
  /** Peak dense bf16 FLOP/s, when known. */
  peakFlopsPerSecond?: number;
}

/** The link all-reduces travel on. */
export interface InterconnectSpec {
  /** Name, e.g. `NVLink 4`. */
  name: string;
  /** Per-device all-reduce bus bandwidth in bytes/s (one direction), used in the ring cost. */
  allReduceBandwidthBytesPerSecond: number;
  /** Latency of one ring step in seconds. */
  latencySeconds: number;
}

/** A set of devices and their interconnect. Devices may differ (heterogeneous clusters). */
export interface ClusterSpec {
  /** Name, e.g. `h100-sxm-80g`. */
  name: string;
  devices: DeviceSpec[];
  interconnect: InterconnectSpec;
}

/** A cluster preset: one device type, its interconnect and the largest node it comes in. */
export interface ClusterPreset {
  name: string;
  description: string;
  device: DeviceSpec;
  interconnect: InterconnectSpec;
  /** Devices in one node (NVLink domain). */
  maxDeviceCount: number;
}

/**
 * Cluster presets as data. Memory and bandwidth are the vendors' datasheet figures (decimal units);
 * all-reduce bandwidth is half the bidirectional NVLink figure. The `cpu` preset models the worker
 * threads of the CPU backend on a small machine (shared DRAM, SharedArrayBuffer all-reduce).
 */
export const CLUSTER_PRESETS: Readonly<Record<string, ClusterPreset>> = {
  'h100-sxm-80g': {
    name: 'h100-sxm-80g',
    description: 'NVIDIA H100 SXM5 80GB HBM3, NVLink 4 (900 GB/s bidirectional), 8 per HGX node',
    device: {
      name: 'H100 SXM 80GB',
      memoryBytes: 80e9,
      memoryBandwidthBytesPerSecond: 3.35e12,
      peakFlopsPerSecond: 989e12,
    },
    interconnect: { name: 'NVLink 4', allReduceBandwidthBytesPerSecond: 450e9, latencySeconds: 8e-6 },
    maxDeviceCount: 8,
  },
  'h200-141g': {
    name: 'h200-141g',
    description: 'NVIDIA H200 SXM 141GB HBM3e, NVLink 4 (900 GB/s bidirectional), 8 per HGX node',
    device: {
      name: 'H200 SXM 141GB',
      memoryBytes: 141e9,
      memoryBandwidthBytesPerSecond: 4.8e12,
      peakFlopsPerSecond: 989e12,
    },
    interconnect: { name: 'NVLink 4', allReduceBandwidthBytesPerSecond: 450e9, latencySeconds: 8e-6 },
    maxDeviceCount: 8,
  },
  'a100-80g': {
    name: 'a100-80g',
    description: 'NVIDIA A100 SXM4 80GB HBM2e, NVLink 3 (600 GB/s bidirectional), 8 per HGX node',
    device: {
      name: 'A100 SXM 80GB',
      memoryBytes: 80e9,
      memoryBandwidthBytesPerSecond: 2.039e12,
      peakFlopsPerSecond: 312e12,
    },
    interconnect: { name: 'NVLink 3', allReduceBandwidthBytesPerSecond: 300e9, latencySeconds: 10e-6 },
    maxDeviceCount: 8,
  },
  cpu: {
    name: 'cpu',
    description: 'CPU backend worker threads sharing DRAM; all-reduce through SharedArrayBuffer',
    device: { name: 'CPU worker', memoryBytes: 4e9, memoryBandwidthBytesPerSecond: 10e9, peakFlopsPerSecond: 20e9 },
    interconnect: { name: 'SharedArrayBuffer', allReduceBandwidthBytesPerSecond: 5e9, latencySeconds: 20e-6 },
    maxDeviceCount: 64,
  },
};

/** Names of the cluster presets. */
export const CLUSTER_PRESET_NAMES = Object.keys(CLUSTER_PRESETS);

const deviceSchema = z.strictObject({
  name: z.string().min(1),
  memoryBytes: z.number().positive(),
  memoryBandwidthBytesPerSecond: z.number().positive(),
  peakFlopsPerSecond: z.number().positive().optional(),
});

/** Zod schema of {@link ClusterSpec}. */
export const clusterSpecSchema = z.strictObject({
  name: z.string().min(1),
  devices: z.array(deviceSchema).min(1),
  interconnect: z.strictObject({
    name: z.string().min(1),
    allReduceBandwidthBytesPerSecond: z.number().positive(),
    latencySeconds: z.number().nonnegative(),
  }),
});

/**
 * Validates a cluster spec object and returns it typed.
 * @throws ConfigError listing every violation with its JSON path.
 */
export function validateClusterSpec(input: unknown): ClusterSpec {
  const parsed = clusterSpecSchema.safeParse(input);
  if (!parsed.success) {
    const issues = issuesFromZod(parsed.error, input);
    throw new ConfigError(`invalid cluster spec:\n${formatIssues(issues)}`, issues);
  }
  return parsed.data;
}

/**
 * A cluster of `deviceCount` identical devices from a preset.
 * @throws ConfigError for an unknown preset or a device count outside 1..maxDeviceCount.
 */
export function createCluster(preset: string, deviceCount: number): ClusterSpec {
  const spec = CLUSTER_PRESETS[preset];
  if (!spec) {
    throw new ConfigError(`unknown cluster preset "${preset}": expected one of ${CLUSTER_PRESET_NAMES.join(', ')}`, [
      { path: '$.cluster', message: `unknown cluster preset "${preset}"` },
    ]);
  }
  if (!Number.isInteger(deviceCount) || deviceCount < 1 || deviceCount > spec.maxDeviceCount) {
    throw new ConfigError(
      `deviceCount: expected an integer from 1 to ${spec.maxDeviceCount} for ${preset}, got ${deviceCount}`,
      [{ path: '$.deviceCount', message: `expected an integer from 1 to ${spec.maxDeviceCount}, got ${deviceCount}` }],
    );
  }
  return {
    name: preset,
    devices: Array.from({ length: deviceCount }, () => ({ ...spec.device })),
    interconnect: { ...spec.interconnect },
  };
}
