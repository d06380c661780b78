import { z } from 'zod';
import type { ClusterSpec } from './cluster.js';
import { formatIssues, ValidationError, type ValidationIssue } from './errors.js';
import { describeValue, issuesFromZod, jsonPath } from './json-path.js';
import type { ModelConfig } from './model-config.js';

/** Current version of the plan document. */
export const PLAN_VERSION = 1;

/** Shares of one head must sum to 1 within this tolerance. */
export const SHARE_TOLERANCE = 1e-9;

/** One copy of a kv head on a device, serving `share` of the batch's requests for that head. */
export interface Replica {
  /** Device index, 0-based. */
  device: number;
  /** Fraction of requests whose (request, head) pair this replica serves, in (0, 1]. */
  share: number;
}

/** Where one kv head of a layer lives. One replica with share 1 is an ordinary placement. */
export interface HeadPlacement {
  kvHead: number;
  replicas: Replica[];
}

/** The placement of one layer's kv heads. */
export interface LayerPlacement {
  heads: HeadPlacement[];
}

/** Per-device predictions. */
export interface DevicePrediction {
  /** Weights + KV at full context for the device's share of requests, in bytes. */
  memoryBytes: number;
  /** KV bytes of that total. */
  kvBytes: number;
  [extra: string]: unknown;
}

/** What the cost model predicts for a plan. Solvers may add fields. */
export interface PlanPrediction {
  stepTimeSeconds: number;
  maxBatch: number;
  throughputTokensPerSecond: number;
  devices: DevicePrediction[];
  [extra: string]: unknown;
}

/**
 * A placement plan: which device hosts which kv head of each layer, with Fair-Copying replicas and
 * their request shares (FairKV, arXiv 2502.15804). Version 1. Every tool reads this shape; solvers
 * and tools may add fields beside it (`model`, `batch`, `notes`...), which readers ignore.
 */
export interface Plan {
  version: 1;
  solver: string;
  deviceCount: number;
  layers: LayerPlacement[];
  predicted: PlanPrediction;
  [extra: string]: unknown;
}

const replicaSchema = z.looseObject({ device: z.number().int(), share: z.number() });
const planSchema = z.looseObject({
  version: z.literal(PLAN_VERSION),
  solver: z.string().min(1),
  deviceCount: z.number().int().positive(),
  layers: z.array(
    z.looseObject({
      heads: z.array(
        z.looseObject({ kvHead: z.number().int().nonnegative(), replicas: z.array(replicaSchema).min(1) }),
      ),
    }),
  ),
  predicted: z.looseObject({
    stepTimeSeconds: z.number().nonnegative(),
    maxBatch: z.number().nonnegative(),
    throughputTokensPerSecond: z.number().nonnegative(),
    devices: z.array(z.looseObject({ memoryBytes: z.number().nonnegative(), kvBytes: z.number().nonnegative() })),
  }),
});

/** What a plan is checked against, beyond its own invariants. */
export interface PlanValidationContext {
  /** The model: layer and kv-head counts must match. */
  model?: Pick<ModelConfig, 'layerCount' | 'kvHeadCount'>;
  /** The cluster: device count must match and predicted memory must fit each device. */
  cluster?: ClusterSpec;
}

/** Result of {@link validatePlan}: every violation found, with JSON paths. */
export interface PlanValidationReport {
  valid: boolean;
  issues: ValidationIssue[];
}

function checkInvariants(plan: Plan, context: PlanValidationContext, issues: ValidationIssue[]): void {
  const add = (path: PropertyKey[], message: string) => issues.push({ path: jsonPath(path), message });
  const { model, cluster } = context;
  if (model && plan.layers.length !== model.layerCount) {
    add(['layers'], `expected ${model.layerCount} layers (the model's layerCount), got ${plan.layers.length}`);
  }
  const kvHeadCount = model?.kvHeadCount ?? plan.layers[0]?.heads.length ?? 0;
  plan.layers.forEach((layer, l) => {
    const seen = new Map<number, number>();
    layer.heads.forEach((head, h) => {
      const path = ['layers', l, 'heads', h];
      if (head.kvHead >= kvHeadCount)
        add([...path, 'kvHead'], `kv head ${head.kvHead} out of range 0..${kvHeadCount - 1}`);
      const first = seen.get(head.kvHead);
      if (first !== undefined) add([...path, 'kvHead'], `kv head ${head.kvHead} already placed at heads[${first}]`);
      else seen.set(head.kvHead, h);
      const devices = new Map<number, number>();
      let total = 0;
      head.replicas.forEach((replica, r) => {
        const rpath = [...path, 'replicas', r];
        if (replica.device < 0 || replica.device >= plan.deviceCount) {
          add([...rpath, 'device'], `device ${replica.device} out of range 0..${plan.deviceCount - 1}`);
        }
        const other = devices.get(replica.device);
        if (other !== undefined)
          add([...rpath, 'device'], `device ${replica.device} already hosts replicas[${other}] of this head`);
        else devices.set(replica.device, r);
        if (!(replica.share > 0 && replica.share <= 1)) {
          add([...rpath, 'share'], `share must be in (0, 1], got ${describeValue(replica.share)}`);
        }
        total += replica.share;
      });
      if (Math.abs(total - 1) > SHARE_TOLERANCE)
        add([...path, 'replicas'], `shares sum to ${total}, expected 1 (within ${SHARE_TOLERANCE})`);
    });
    for (let kvHead = 0; kvHead < kvHeadCount; kvHead++) {
      if (!seen.has(kvHead)) add(['layers', l, 'heads'], `kv head ${kvHead} is missing`);
    }
  });
  if (plan.predicted.devices.length !== plan.deviceCount) {
    add(
      ['predicted', 'devices'],
      `expected ${plan.deviceCount} entries (deviceCount), got ${plan.predicted.devices.length}`,
    );
  }
  if (cluster) {
    if (cluster.devices.length !== plan.deviceCount) {
      add(
        ['deviceCount'],
        `plan has ${plan.deviceCount} devices but cluster ${cluster.name} has ${cluster.devices.length}`,
      );
    }
    plan.predicted.devices.forEach((device, d) => {
      const capacity = cluster.devices[d]?.memoryBytes;
      if (capacity !== undefined && device.memoryBytes > capacity) {
        add(
          ['predicted', 'devices', d, 'memoryBytes'],
          `needs ${device.memoryBytes} bytes but device ${d} (${cluster.devices[d]!.name}) has ${capacity}: short by ${device.memoryBytes - capacity}`,
        );
      }
    });
  }
}

/**
 * Checks a plan document against the schema and every invariant: each layer places each kv head exactly
 * once, devices are in range, no two replicas of one head share a device, shares are in (0, 1] and sum
 * to 1 within {@link SHARE_TOLERANCE}, and (given a cluster) predicted memory fits every device.
 * Returns all violations; never throws for bad input.
 */
export function validatePlan(input: unknown, context: PlanValidationContext = {}): PlanValidationReport {
  const parsed = planSchema.safeParse(input);
  if (!parsed.success) return { valid: false, issues: issuesFromZod(parsed.error, input) };
  const issues: ValidationIssue[] = [];
  checkInvariants(parsed.data as Plan, context, issues);
  return { valid: issues.length === 0, issues };
}

/**
 * Validates and returns the plan typed.
 * @throws ValidationError listing every violation with its JSON path.
 */
export function assertValidPlan(input: unknown, context: PlanValidationContext = {}): Plan {
  const report = validatePlan(input, context);
  if (!report.valid) throw new ValidationError(`invalid plan:\n${formatIssues(report.issues)}`, report.issues);
  return input as Plan;
}

/**
 * Parses plan JSON text and validates it.
 * @param source - file name used in error messages
 * @throws ValidationError naming the file and every violation.
 */
export function parsePlan(text: string, context: PlanValidationContext = {}, source = 'plan'): Plan {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ValidationError(`${source}: not valid JSON (${(error as Error).message})`, [
      { path: '$', message: 'not valid JSON' },
    ]);
  }
  const report = validatePlan(json, context);
  if (!report.valid)
    throw new ValidationError(`${source}: invalid plan:\n${formatIssues(report.issues)}`, report.issues);
  return json as Plan;
}
