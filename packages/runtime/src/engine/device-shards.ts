import { assertValidPlan, type ModelConfig, type Plan, ValidationError } from '@fairkv/core';

/** One kv head a device hosts in one layer, and which replica of that head it is. */
export interface HostedHead {
  /** Global kv head index in the layer. */
  kvHead: number;
  /** Index of this device's replica in `plan.layers[l].heads[h].replicas` order. */
  replica: number;
  /** The replica's planned share of requests. */
  share: number;
  /** Whether this replica computes the head's prompt attention output (the first replica does). */
  prefillOwner: boolean;
}

/** What one device holds: its kv-head slices per layer (copies included) and its MLP rows. */
export interface DeviceShard {
  device: number;
  /** Per layer, the hosted kv heads sorted by global index; local head `i` is `layers[l][i]`. */
  layers: HostedHead[][];
  /** The device's contiguous slice `[start, end)` of the MLP intermediate dimension (tensor parallel). */
  ffnStart: number;
  ffnEnd: number;
  /** Whether this device holds the final norm and LM head and computes logits. */
  computesLogits: boolean;
}

/** Where every replica of every head lives, from the plan. */
export interface ReplicaTable {
  /** `[layer][kvHead]` -> replicas `{ device, share }`, plan order. */
  replicas: { device: number; share: number }[][][];
}

/**
 * Splits `size` into `parts` contiguous ranges whose lengths differ by at most one, as tensor
 * parallelism splits the MLP intermediate dimension.
 */
export function splitRange(size: number, parts: number, index: number): [number, number] {
  const base = Math.floor(size / parts);
  const extra = size % parts;
  const start = index * base + Math.min(index, extra);
  return [start, start + base + (index < extra ? 1 : 0)];
}

/**
 * Derives each device's shard from a validated plan: which kv heads (and copies) it hosts per layer,
 * its MLP slice, and whether it computes logits (device 0).
 * @throws ValidationError when the plan does not fit the model.
 */
export function deviceShardsFromPlan(plan: Plan, model: ModelConfig): { shards: DeviceShard[]; table: ReplicaTable } {
  assertValidPlan(plan, { model });
  if (plan.deviceCount > model.ffnSize) {
    throw new ValidationError(`plan.deviceCount: ${plan.deviceCount} devices exceed the MLP width ${model.ffnSize}`, [
      { path: '$.deviceCount', message: `more devices than MLP rows (${model.ffnSize})` },
    ]);
  }
  const shards: DeviceShard[] = Array.from({ length: plan.deviceCount }, (_, device) => {
    const [ffnStart, ffnEnd] = splitRange(model.ffnSize, plan.deviceCount, device);
    return { device, layers: plan.layers.map(() => []), ffnStart, ffnEnd, computesLogits: device === 0 };
  });
  const replicas = plan.layers.map((layer) => {
    const byHead: { device: number; share: number }[][] = Array.from({ length: model.kvHeadCount }, () => []);
    for (const head of layer.heads) byHead[head.kvHead] = head.replicas.map(({ device, share }) => ({ device, share }));
    return byHead;
  });
  replicas.forEach((layer, l) => {
    layer.forEach((headReplicas, kvHead) => {
      headReplicas.forEach(({ device, share }, replica) => {
        shards[device]!.layers[l]!.push({ kvHead, replica, share, prefillOwner: replica === 0 });
      });
    });
  });
  for (const shard of shards) for (const layer of shard.layers) layer.sort((a, b) => a.kvHead - b.kvHead);
  return { shards, table: { replicas } };
}

/** A plan with every kv head on device 0: the single-device reference. */
export function singleDevicePlan(model: ModelConfig): Plan {
  return {
    version: 1,
    solver: 'single-device',
    deviceCount: 1,
    layers: Array.from({ length: model.layerCount }, () => ({
      heads: Array.from({ length: model.kvHeadCount }, (_, kvHead) => ({
        kvHead,
        replicas: [{ device: 0, share: 1 }],
      })),
    })),
    predicted: {
      stepTimeSeconds: 0,
      maxBatch: 0,
      throughputTokensPerSecond: 0,
      devices: [{ memoryBytes: 0, kvBytes: 0 }],
    },
  };
}
