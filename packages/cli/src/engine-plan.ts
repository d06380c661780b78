/**
 * The placement a runtime command runs with: `--plan <file>`, or `--solver <name>` over `--devices`
 * CPU devices (with `--profile`, or a profile measured on the command's prompts with its policy), or
 * contiguous tensor parallelism when only `--devices` is given.
 *
 * @packageDocumentation
 */
import type { CompressionPolicy } from '@fairkv/compress';
import {
  type ClusterSpec,
  createCluster,
  type DType,
  type HeadLoadProfile,
  type ModelConfig,
  type Plan,
  parsePlan,
} from '@fairkv/core';
import { type LoadedModel, type ProfileHeadLoadsOptions, profileHeadLoads } from '@fairkv/runtime';
import { InputError, UsageError, withContext } from './cli-error.js';
import { readTextFile } from './files.js';
import { type CliSolverName, runSolver } from './placement-run.js';
import { fitProfile, loadProfile } from './profile-source.js';

/** The flags that choose a placement. */
export interface PlacementFlags {
  devices?: number;
  plan?: string;
  solver?: CliSolverName;
  profile?: string;
}

/** A plan and how it was made. */
export interface ChosenPlan {
  /** The plan, or undefined for a single device. */
  plan: Plan | undefined;
  deviceCount: number;
  /** One line: where the plan came from. */
  description: string;
  /** The profile the solver balanced, when one was used. */
  profile?: HeadLoadProfile;
  warnings: string[];
}

/** A profile in which every head keeps `tokens`: contiguous placement does not depend on loads. */
export function uniformProfile(model: ModelConfig, tokens: number): HeadLoadProfile {
  const mean = Array.from({ length: model.layerCount }, () => new Array<number>(model.kvHeadCount).fill(tokens));
  return {
    version: 1,
    layerCount: model.layerCount,
    kvHeadCount: model.kvHeadCount,
    contextLength: Math.max(1, tokens),
    mean,
    max: mean.map((row) => [...row]),
    sampleCount: 1,
    policy: { name: 'full', settings: {} },
    source: `uniform: every head keeps ${tokens} tokens`,
  };
}

/** Options of {@link choosePlan}. */
export interface ChoosePlanOptions {
  model: LoadedModel;
  flags: PlacementFlags;
  policy: CompressionPolicy;
  /** Prompts a profile is measured on when a solver needs one and `--profile` is absent. */
  prompts: readonly string[];
  /** Tokens each request generates (added to measured loads; the context). */
  maxTokens: number;
  /** Batch the solver balances for. */
  batch: number;
  onProfileProgress?: (done: number, total: number) => void;
  /**
   * The devices a plan is solved for, once their count is known (default: the `cpu` preset, and a
   * measured profile's prefills on the CPU in this thread).
   */
  devicesFor?: (deviceCount: number) => Promise<PlanDevices>;
  /** Dtype of the weights and KV the plan must fit (default f32). */
  dtype?: DType;
}

/** What {@link ChoosePlanOptions.devicesFor} says about the devices a plan is for. */
export interface PlanDevices {
  /**
   * The devices the solver plans memory and time with: a cluster preset's name (e.g. `h100-sxm-80g`), or a
   * cluster of exactly the device count (the GPUs found, with their own memory: `clusterFor`).
   */
  cluster: string | ClusterSpec;
  /** Where a measured profile's prefills run (under the contiguous plan); absent: the CPU in this thread. */
  profileOn?: ProfileBackend;
  /** Dtype the devices run in, which the plan must fit (default: {@link ChoosePlanOptions.dtype}). */
  dtype?: DType;
}

/** A backend a profile's prefills can run on (with the devices' execution and dtype). */
export interface ProfileBackend {
  backend: NonNullable<ProfileHeadLoadsOptions['backend']>;
  execution: 'inline' | 'workers';
  dtype: ProfileHeadLoadsOptions['dtype'];
  /** Its name in the profile's source, e.g. `cuda, bf16`. */
  name: string;
}

/** Where {@link measureProfile} runs the prefills, when not on the CPU in this thread. */
export interface ProfileDevices extends ProfileBackend {
  plan: Plan;
}

/**
 * The devices a measured profile observes: `on` under the contiguous plan of `cluster`'s devices
 * (standard tensor parallelism, the layout FairKV observes loads under before it re-places heads).
 */
export async function contiguousProfileDevices(
  on: ProfileBackend,
  request: { model: ModelConfig; cluster: ClusterSpec; batch: number; maxTokens: number },
): Promise<ProfileDevices> {
  const { model, cluster } = request;
  const { plan } = await runSolver('contiguous', {
    model,
    profile: uniformProfile(model, Math.min(model.maxContext, 1 + request.maxTokens)),
    cluster,
    batch: request.batch,
    dtype: on.dtype ?? 'f32',
  });
  return { ...on, plan };
}

/** Where a profile was measured, for its source: `cuda, bf16, contiguous plan on 2 devices`. */
export function describeProfileDevices(devices: ProfileDevices): string {
  const count = devices.plan.deviceCount;
  return `${devices.name}, contiguous plan on ${count} device${count === 1 ? '' : 's'}`;
}

/**
 * Measures a profile of the prompts with the policy: one prefill per prompt, in this thread on the
 * CPU, or on `devices` (e.g. the GPUs a benchmark runs on, under standard tensor parallelism).
 */
export async function measureProfile(
  options: Pick<ChoosePlanOptions, 'model' | 'prompts' | 'policy' | 'maxTokens' | 'onProfileProgress'>,
  devices?: ProfileDevices,
): Promise<HeadLoadProfile> {
  const where = devices ? ` on ${describeProfileDevices(devices)}` : '';
  return profileHeadLoads({
    model: options.model,
    prompts: options.prompts,
    policy: options.policy,
    generatedTokens: options.maxTokens,
    source: `measured on ${options.prompts.length} prompt(s) with ${options.policy.name}${where}`,
    ...(options.onProfileProgress ? { onProgress: options.onProfileProgress } : {}),
    ...(devices
      ? {
          backend: devices.backend,
          plan: devices.plan,
          execution: devices.execution,
          ...(devices.dtype ? { dtype: devices.dtype } : {}),
        }
      : {}),
  });
}

/**
 * Chooses the placement the flags describe.
 * @throws UsageError for conflicting flags (exit 1); InputError / ValidationError naming the plan or
 *   profile file, or a plan that does not fit the model (exit 2).
 */
export async function choosePlan(options: ChoosePlanOptions): Promise<ChosenPlan> {
  const { model, flags } = options;
  const config = model.config;
  if (flags.plan && flags.solver) throw new UsageError('--plan and --solver are exclusive: give one');
  if (flags.plan && flags.profile) throw new UsageError('--profile applies to --solver, not to --plan');
  if (flags.plan) {
    const text = readTextFile(flags.plan, '--plan');
    let plan: Plan;
    try {
      plan = parsePlan(text, { model: config }, flags.plan);
    } catch (error) {
      throw withContext(error, `--plan ${flags.plan}`);
    }
    if (flags.devices !== undefined && flags.devices !== plan.deviceCount) {
      throw new InputError(`--devices ${flags.devices}: the plan ${flags.plan} has ${plan.deviceCount} devices`);
    }
    return {
      plan,
      deviceCount: plan.deviceCount,
      description: `plan ${flags.plan} (${plan.solver}, ${plan.deviceCount} devices)`,
      warnings: [],
    };
  }
  const deviceCount = flags.devices ?? 1;
  if (flags.profile && !flags.solver) throw new UsageError('--profile needs --solver <name>');
  if (deviceCount === 1 && !flags.solver) {
    return { plan: undefined, deviceCount: 1, description: 'one device', warnings: [] };
  }
  const solver: CliSolverName = flags.solver ?? 'contiguous';
  const warnings: string[] = [];
  let profile = uniformProfile(config, Math.min(config.maxContext, 1 + options.maxTokens));
  if (flags.profile) {
    const loaded = loadProfile(flags.profile, config);
    profile = loaded.profile;
    warnings.push(...loaded.warnings);
  }
  const devices = await options.devicesFor?.(deviceCount);
  let cluster: ClusterSpec;
  try {
    const given = devices?.cluster ?? 'cpu';
    cluster = typeof given === 'string' ? createCluster(given, deviceCount) : given;
  } catch (error) {
    throw withContext(error, `--devices ${deviceCount}`);
  }
  if (cluster.devices.length !== deviceCount) {
    throw new UsageError(`--devices ${deviceCount}: the cluster to plan for has ${cluster.devices.length} devices`);
  }
  const dtype = devices?.dtype ?? options.dtype ?? 'f32';
  if (!flags.profile && solver !== 'contiguous') {
    const on = devices?.profileOn;
    const observed = on
      ? await contiguousProfileDevices(on, {
          model: config,
          cluster,
          batch: options.batch,
          maxTokens: options.maxTokens,
        })
      : undefined;
    profile = fitProfile(await measureProfile(options, observed), config, 'measured').profile;
  }
  const result = await runSolver(solver, {
    model: config,
    profile,
    cluster,
    batch: options.batch,
    dtype,
    contextLength: profile.contextLength,
  });
  warnings.push(...result.warnings);
  return {
    plan: result.plan,
    deviceCount,
    description: `${solver} plan on ${deviceCount} ${cluster.devices[0]!.name} device${deviceCount === 1 ? '' : 's'} (profile: ${profile.source})`,
    profile,
    warnings,
  };
}
