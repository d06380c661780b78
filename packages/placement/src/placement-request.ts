import {
  type ClusterSpec,
  DTYPES,
  type DType,
  describeValue,
  formatIssues,
  type HeadLoadProfile,
  type ModelConfig,
  type ModelSizes,
  modelSizes,
  ValidationError,
  type ValidationIssue,
} from '@fairkv/core';

/** Which profile matrix sizes the KV cache a request holds (memory); the step time always uses `mean`. */
export type MemoryLoad = 'mean' | 'p90' | 'max';

/** Solver settings. Every field is optional; {@link resolvePlacementOptions} fills the defaults. */
export interface PlacementOptions {
  /**
   * Most replicas one (layer, kv head) may have, 1 to deviceCount. 1 forbids Fair-Copying.
   * Default: deviceCount.
   */
  maxReplicasPerHead?: number;
  /** Most extra replicas (copies beyond the first) over the whole model. Default: unlimited. */
  copyBudget?: number;
  /** Fixed cost of one layer on one device per decode step (launches, sync), in seconds. Default 10e-6. */
  layerOverheadSeconds?: number;
  /**
   * Fraction of each device's nominal memory bandwidth the decode kernels reach, in (0, 1]. Default 1
   * (the paper's model: bytes over nominal bandwidth). Fitted together with `layerOverheadSeconds` on
   * measured steps of fairkv's CUDA backend (8B shape on 2 H100s, bench/cuda-decode-e2e): 0.985 with
   * 232 µs per layer, which then predict the other plans on 2 and 4 H100s within 3% at full KV.
   */
  bandwidthEfficiency?: number;
  /** Fraction of each device's memory the plan may use (the rest is activations, fragmentation). Default 0.9. */
  memoryUtilization?: number;
  /** Which profile matrix sizes KV memory: `max` (default, falls back to p90 then mean when absent), `p90`, `mean`. */
  memoryLoad?: MemoryLoad;
  /** ILP only: wall-clock limit in seconds. Default 30. */
  timeLimitSeconds?: number;
  /** ILP only: relative MIP gap at which glpk may stop (0: prove optimality). Default 0. */
  mipGap?: number;
  /** ILP only: solve in a worker thread (default true); false solves in the calling thread. */
  worker?: boolean;
}

/** Options with every default applied. */
export type ResolvedPlacementOptions = Required<PlacementOptions>;

/** What every solver is asked: the model, its head-load profile, the cluster and the workload. */
export interface PlacementRequest {
  model: ModelConfig;
  /** Per-(layer, kv head) kept tokens; its layer and kv-head counts must match the model. */
  profile: HeadLoadProfile;
  /** The devices (their count is the plan's deviceCount) and interconnect. */
  cluster: ClusterSpec;
  /** Concurrent requests per decode step, or `max`: the largest batch the plan fits. */
  batch: number | 'max';
  /** Context a request reaches; kept tokens are capped at it. Default: the profile's contextLength. */
  contextLength?: number;
  /** Tokens generated per request, for the per-request decode time. Default 256. */
  newTokens?: number;
  /** Weight and KV dtype. Default bf16. */
  dtype?: DType;
  options?: PlacementOptions;
}

/**
 * A {@link PlacementRequest} resolved into the numbers the cost model and the solvers use
 * (docs/cost-model.md). Byte counts are per device and per decode step unless noted.
 */
export interface PlacementProblem {
  request: PlacementRequest;
  model: ModelConfig;
  cluster: ClusterSpec;
  dtype: DType;
  options: ResolvedPlacementOptions;
  layerCount: number;
  kvHeadCount: number;
  deviceCount: number;
  contextLength: number;
  newTokens: number;
  sizes: ModelSizes;
  /** Memory bandwidth of each device, bytes/s. */
  bandwidth: number[];
  /** Memory each device may fill: capacity x memoryUtilization. */
  usableMemoryBytes: number[];
  /** KV bytes one request's (layer, kv head) pair reads per decode step: mean kept tokens x bytes/token. */
  kvReadBytes: number[][];
  /** KV bytes one request's (layer, kv head) pair holds at full context (the memoryLoad matrix). */
  kvMemoryBytes: number[][];
  /** Weight bytes of one kv head's slice (Wq group rows, Wk, Wv, Wo columns) of one layer. */
  headWeightBytes: number;
  /** Bytes every device reads per layer whatever it hosts: its MLP shard (1/G) and the two norms. */
  layerBaseBytes: number;
  /** Weight bytes every device holds besides head slices: MLP shards, norms, embedding and LM head shards. */
  baseWeightBytes: number;
  /** Warnings gathered while resolving (profile capped, memory matrix fallback...). */
  warnings: string[];
}

const DEFAULTS = {
  copyBudget: Number.POSITIVE_INFINITY,
  layerOverheadSeconds: 10e-6,
  bandwidthEfficiency: 1,
  memoryUtilization: 0.9,
  memoryLoad: 'max' as MemoryLoad,
  timeLimitSeconds: 30,
  mipGap: 0,
  worker: true,
};

const OPTION_NAMES = [
  'maxReplicasPerHead',
  'copyBudget',
  'layerOverheadSeconds',
  'bandwidthEfficiency',
  'memoryUtilization',
  'memoryLoad',
  'timeLimitSeconds',
  'mipGap',
  'worker',
];

/**
 * Applies defaults to solver options and checks each one.
 * @throws ValidationError naming every bad option (`$.options.<name>`), its value and what was expected.
 */
export function resolvePlacementOptions(options: PlacementOptions = {}, deviceCount: number): ResolvedPlacementOptions {
  const issues: ValidationIssue[] = [];
  const bad = (name: string, expected: string) =>
    issues.push({
      path: `$.options.${name}`,
      message: `${name}: expected ${expected}, got ${describeValue((options as Record<string, unknown>)[name])}`,
    });
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.includes(key)) {
      issues.push({
        path: `$.options.${key}`,
        message: `unknown option "${key}": expected one of ${OPTION_NAMES.join(', ')}`,
      });
    }
  }
  const resolved: ResolvedPlacementOptions = { ...DEFAULTS, maxReplicasPerHead: deviceCount, ...definedOnly(options) };
  const {
    maxReplicasPerHead,
    copyBudget,
    layerOverheadSeconds,
    bandwidthEfficiency,
    memoryUtilization,
    memoryLoad,
    timeLimitSeconds,
    mipGap,
    worker,
  } = resolved;
  if (!Number.isInteger(maxReplicasPerHead) || maxReplicasPerHead < 1 || maxReplicasPerHead > deviceCount) {
    bad('maxReplicasPerHead', `an integer from 1 to the device count ${deviceCount}`);
  }
  if (!(copyBudget === Number.POSITIVE_INFINITY || (Number.isInteger(copyBudget) && copyBudget >= 0))) {
    bad('copyBudget', 'a non-negative integer (or Infinity)');
  }
  if (!(Number.isFinite(layerOverheadSeconds) && layerOverheadSeconds >= 0))
    bad('layerOverheadSeconds', 'a finite number >= 0');
  if (!(bandwidthEfficiency > 0 && bandwidthEfficiency <= 1)) bad('bandwidthEfficiency', 'a number in (0, 1]');
  if (!(memoryUtilization > 0 && memoryUtilization <= 1)) bad('memoryUtilization', 'a number in (0, 1]');
  if (!['mean', 'p90', 'max'].includes(memoryLoad)) bad('memoryLoad', '"mean", "p90" or "max"');
  if (!(Number.isFinite(timeLimitSeconds) && timeLimitSeconds > 0)) bad('timeLimitSeconds', 'a finite number > 0');
  if (!(Number.isFinite(mipGap) && mipGap >= 0 && mipGap < 1)) bad('mipGap', 'a number in [0, 1)');
  if (typeof worker !== 'boolean') bad('worker', 'true or false');
  if (issues.length > 0) throw new ValidationError(`invalid placement options:\n${formatIssues(issues)}`, issues);
  return resolved;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkRequest(request: PlacementRequest, issues: ValidationIssue[]): void {
  const { model, profile, cluster, batch } = request;
  if (profile.layerCount !== model.layerCount || profile.mean.length !== model.layerCount) {
    issues.push({
      path: '$.profile.layerCount',
      message: `profile has ${profile.layerCount} layers but model ${model.name} has ${model.layerCount} (tileProfileLayers can repeat rows)`,
    });
  }
  if (profile.kvHeadCount !== model.kvHeadCount || profile.mean.some((row) => row.length !== model.kvHeadCount)) {
    issues.push({
      path: '$.profile.kvHeadCount',
      message: `profile has ${profile.kvHeadCount} kv heads per layer but model ${model.name} has ${model.kvHeadCount}`,
    });
  }
  if (cluster.devices.length < 1) issues.push({ path: '$.cluster.devices', message: 'expected at least one device' });
  if (!(batch === 'max' || (Number.isInteger(batch) && batch >= 1))) {
    issues.push({
      path: '$.batch',
      message: `batch: expected a positive integer or "max", got ${describeValue(batch)}`,
    });
  }
  const positiveInteger = (name: 'contextLength' | 'newTokens') => {
    const value = request[name];
    if (value !== undefined && !(Number.isInteger(value) && value >= 1)) {
      issues.push({ path: `$.${name}`, message: `${name}: expected a positive integer, got ${describeValue(value)}` });
    }
  };
  positiveInteger('contextLength');
  positiveInteger('newTokens');
  if (request.dtype !== undefined && !DTYPES.includes(request.dtype)) {
    issues.push({
      path: '$.dtype',
      message: `dtype: expected one of ${DTYPES.join(', ')}, got ${describeValue(request.dtype)}`,
    });
  }
}

/**
 * Validates a request and derives the byte counts of the cost model (docs/cost-model.md).
 * @throws ValidationError naming every bad field or option.
 */
export function resolvePlacementProblem(request: PlacementRequest): PlacementProblem {
  const issues: ValidationIssue[] = [];
  checkRequest(request, issues);
  if (issues.length > 0) throw new ValidationError(`invalid placement request:\n${formatIssues(issues)}`, issues);
  const { model, profile, cluster } = request;
  const deviceCount = cluster.devices.length;
  const options = resolvePlacementOptions(request.options, deviceCount);
  const dtype = request.dtype ?? 'bf16';
  const sizes = modelSizes(model, dtype);
  const contextLength = request.contextLength ?? profile.contextLength;
  const warnings: string[] = [];
  if (contextLength > profile.contextLength) {
    warnings.push(
      `contextLength ${contextLength} exceeds the profile's ${profile.contextLength}: kept tokens are taken from the profile as measured, not extrapolated`,
    );
  }
  let memoryMatrix = profile.mean;
  if (options.memoryLoad !== 'mean') {
    const wanted = options.memoryLoad === 'max' ? (profile.max ?? profile.p90) : profile.p90;
    if (wanted) memoryMatrix = wanted;
    else warnings.push(`profile has no ${options.memoryLoad} matrix: KV memory is sized from the mean kept tokens`);
  }
  const perToken = sizes.kvBytesPerTokenPerKvHead;
  const toBytes = (rows: number[][]) =>
    rows.map((row) => row.map((tokens) => Math.min(tokens, contextLength) * perToken));
  const layerBaseBytes = sizes.mlpWeightBytesPerLayer / deviceCount + sizes.normWeightBytesPerLayer;
  return {
    request,
    model,
    cluster,
    dtype,
    options,
    layerCount: model.layerCount,
    kvHeadCount: model.kvHeadCount,
    deviceCount,
    contextLength,
    newTokens: request.newTokens ?? 256,
    sizes,
    bandwidth: cluster.devices.map((device) => device.memoryBandwidthBytesPerSecond * options.bandwidthEfficiency),
    usableMemoryBytes: cluster.devices.map((device) => device.memoryBytes * options.memoryUtilization),
    kvReadBytes: toBytes(profile.mean),
    kvMemoryBytes: toBytes(memoryMatrix),
    headWeightBytes: sizes.kvHeadSliceWeightBytes,
    layerBaseBytes,
    baseWeightBytes:
      model.layerCount * layerBaseBytes +
      (sizes.embeddingBytes + sizes.lmHeadBytes) / deviceCount +
      sizes.finalNormBytes,
    warnings,
  };
}
