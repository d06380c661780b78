import type { LP } from 'glpk.js/node';
import type { LayerCosts } from '../solvers/layer-costs.js';

/** glpk bound type (glpk.h): free. */
export const GLP_FR = 1;
/** glpk bound type: lower bound only. */
export const GLP_LO = 2;
/** glpk bound type: upper bound only. */
export const GLP_UP = 3;
/** glpk bound type: both bounds. */
export const GLP_DB = 4;
/** glpk bound type: fixed. */
export const GLP_FX = 5;
/** glpk solution status 5: optimal, proven (TOOLCHAIN.md: glpk.js reports 2 when it stops at the MIP gap). */
export const GLP_OPT = 5;
/** glpk solution status 2: feasible (time or MIP-gap limit hit). */
export const GLP_FEAS = 2;

/** Times are given to glpk in microseconds and memory in GB, so coefficients stay near 1. */
const TIME_SCALE = 1e6;
const MEMORY_SCALE = 1e-9;

/** One layer of an ILP: its cost terms (seconds) and valid bounds on its slowest device's time. */
export interface IlpLayer {
  costs: LayerCosts;
  /** A feasible layer time (fair-copy's): the optimum is no larger. */
  upperBound: number;
  /** A proven lower bound on the layer time, or 0. */
  lowerBound: number;
}

/** Cross-layer constraints, present only when the model couples layers. */
export interface IlpCoupling {
  /** Bytes each device may still fill with head slices and KV at the memory batch. */
  memoryRoom: number[];
  headWeightBytes: number;
  /** `[layer][kvHead]` KV bytes of the whole memory batch for a head. */
  kvMemoryBytes: number[][];
  /** Most extra replicas over all layers (Infinity: no row). */
  copyBudget: number;
  /** The sum of layer times is at most this (fair-copy's). */
  totalUpperBound: number;
}

/** Everything the ILP of docs/cost-model.md ("ilp") needs. */
export interface IlpModelInput {
  layers: IlpLayer[];
  /** Device bandwidths, one per device (the model's device count). */
  bandwidth: number[];
  maxReplicasPerHead: number;
  /** Whether all devices are interchangeable, so device symmetry may be broken. */
  identicalDevices: boolean;
  /** Groups of interchangeable devices (same bandwidth and capacity), used when not all are identical. */
  deviceGroups?: number[][];
  coupling?: IlpCoupling;
}

/** Column names: `t<l>` layer time, `x<l>_<h>_<g>` hosting binary, `s<l>_<h>_<g>` share. */
export const timeVar = (layer: number) => `t${layer}`;
/** Hosting binary of head `head` of layer `layer` on `device`. */
export const hostVar = (layer: number, head: number, device: number) => `x${layer}_${head}_${device}`;
/** Share of head `head` of layer `layer` served by `device`. */
export const shareVar = (layer: number, head: number, device: number) => `s${layer}_${head}_${device}`;

/**
 * Largest share head `head` can have on `device` in a layer whose time is at most `upperBound`:
 * the device must also read its base and the head's weight slice. Tightens `s <= m x` (big-M).
 */
export function shareCap(costs: LayerCosts, head: number, device: number, upperBound: number): number {
  const room = upperBound - costs.base[device]! - costs.weight[device]!;
  const kv = costs.kv[head]![device]!;
  if (room < 0) return 0;
  return kv > 0 ? Math.min(1, room / kv) : 1;
}

/** Fewest replicas head `head` needs in a layer of time at most `upperBound` (sum of its largest caps >= 1). */
export function minimumReplicas(costs: LayerCosts, head: number, upperBound: number): number {
  const caps = costs.base.map((_, device) => shareCap(costs, head, device, upperBound)).sort((a, b) => b - a);
  let total = 0;
  for (let count = 1; count <= caps.length; count++) {
    total += caps[count - 1]!;
    if (total >= 1 - 1e-9) return count;
  }
  return caps.length + 1;
}

/**
 * Builds the glpk.js MILP (FairKV placement, arXiv 2502.15804, with Fair-Copying): per layer l,
 * minimise the makespan t_l over binary hosting x[l,h,g] and continuous shares s[l,h,g], with
 *  - device rows: base_g + sum_h (weight_g x + kv[h][g] s) <= t_l,
 *  - each head's shares sum to 1, s <= cap x (cap from the upper bound), fewest and most replicas per head,
 *  - valid bounds lowerBound <= t_l <= upperBound,
 *  - symmetry breaking for identical devices: the k-th heaviest head of the first layer has a replica on
 *    one of devices 0..k (relabel devices in order of the heads' first replicas),
 *  - when coupled: memory rows per device across layers, a total copy budget, sum t_l <= fair-copy's.
 */
export function buildIlpModel(input: IlpModelInput, name = 'fairkv-placement'): LP {
  const { layers, bandwidth, maxReplicasPerHead, coupling } = input;
  const devices = bandwidth.length;
  const subjectTo: LP['subjectTo'] = [];
  const bounds: NonNullable<LP['bounds']> = [];
  const binaries: string[] = [];
  const objective = layers.map((_, layer) => ({ name: timeVar(layer), coef: 1 }));
  layers.forEach(({ costs, upperBound, lowerBound }, layer) => {
    const heads = costs.kv.length;
    const upper = Number.isFinite(upperBound) ? upperBound * TIME_SCALE : Number.MAX_VALUE;
    bounds.push({
      name: timeVar(layer),
      type: Number.isFinite(upperBound) ? GLP_DB : GLP_LO,
      lb: lowerBound * TIME_SCALE,
      ub: upper,
    });
    for (let head = 0; head < heads; head++) {
      const least = Math.min(maxReplicasPerHead, minimumReplicas(costs, head, upperBound));
      const shares = [];
      const hosts = [];
      for (let device = 0; device < devices; device++) {
        const cap = shareCap(costs, head, device, upperBound);
        binaries.push(hostVar(layer, head, device));
        if (cap <= 0) bounds.push({ name: hostVar(layer, head, device), type: GLP_FX, lb: 0, ub: 0 });
        bounds.push({ name: shareVar(layer, head, device), type: GLP_DB, lb: 0, ub: Math.max(cap, 0) });
        subjectTo.push({
          name: `link${layer}_${head}_${device}`,
          vars: [
            { name: shareVar(layer, head, device), coef: 1 },
            { name: hostVar(layer, head, device), coef: -Math.max(cap, 0) },
          ],
          bnds: { type: GLP_UP, lb: 0, ub: 0 },
        });
        shares.push({ name: shareVar(layer, head, device), coef: 1 });
        hosts.push({ name: hostVar(layer, head, device), coef: 1 });
      }
      subjectTo.push({ name: `share${layer}_${head}`, vars: shares, bnds: { type: GLP_FX, lb: 1, ub: 1 } });
      subjectTo.push({
        name: `replicas${layer}_${head}`,
        vars: hosts,
        bnds:
          least >= maxReplicasPerHead
            ? { type: GLP_FX, lb: least, ub: least }
            : { type: GLP_DB, lb: least, ub: maxReplicasPerHead },
      });
    }
    for (let device = 0; device < devices; device++) {
      const row = [{ name: timeVar(layer), coef: -1 }];
      for (let head = 0; head < heads; head++) {
        const weight = costs.weight[device]! * TIME_SCALE;
        const kv = costs.kv[head]![device]! * TIME_SCALE;
        row.push(
          { name: hostVar(layer, head, device), coef: weight },
          { name: shareVar(layer, head, device), coef: kv },
        );
      }
      subjectTo.push({
        name: `device${layer}_${device}`,
        vars: row,
        bnds: { type: GLP_UP, lb: 0, ub: -costs.base[device]! * TIME_SCALE },
      });
    }
    addForestCuts(layer, heads, devices, subjectTo);
  });
  if (input.identicalDevices && layers.length > 0) breakDeviceSymmetry(layers[0]!.costs, devices, subjectTo);
  else if (layers.length > 0)
    for (const group of input.deviceGroups ?? []) orderGroupTimes(layers[0]!.costs, group, subjectTo);
  if (coupling) addCoupling(input, coupling, subjectTo);
  return { name, objective: { direction: 1, name: 'step', vars: objective }, subjectTo, bounds, binaries };
}

/**
 * Some optimal solution's head-device graph is a forest: along a cycle of replicas, shares can shift
 * (h1 to g2, h2 back to g1, in proportion to the loads) without changing any device's time until one
 * replica empties, which then saves its weight slice. So at most heads + devices - 1 replicas in all,
 * and no 4-cycle: two heads share at most one... of any two devices, at most 3 of the 4 pairs.
 */
function addForestCuts(layer: number, heads: number, devices: number, subjectTo: LP['subjectTo']): void {
  const all = [];
  for (let head = 0; head < heads; head++)
    for (let device = 0; device < devices; device++) all.push({ name: hostVar(layer, head, device), coef: 1 });
  subjectTo.push({ name: `forest${layer}`, vars: all, bnds: { type: GLP_UP, lb: 0, ub: heads + devices - 1 } });
  for (let a = 0; a < heads; a++) {
    for (let b = a + 1; b < heads; b++) {
      for (let g = 0; g < devices; g++) {
        for (let k = g + 1; k < devices; k++) {
          subjectTo.push({
            name: `cycle${layer}_${a}_${b}_${g}_${k}`,
            vars: [hostVar(layer, a, g), hostVar(layer, a, k), hostVar(layer, b, g), hostVar(layer, b, k)].map(
              (name) => ({ name, coef: 1 }),
            ),
            bnds: { type: GLP_UP, lb: 0, ub: 3 },
          });
        }
      }
    }
  }
}

/** Head k (by decreasing load) of layer 0 has a replica on one of devices 0..k. */
function breakDeviceSymmetry(costs: LayerCosts, devices: number, subjectTo: LP['subjectTo']): void {
  const order = costs.kv
    .map((row, head) => ({ head, load: row[0]! }))
    .sort((a, b) => b.load - a.load || a.head - b.head);
  order.slice(0, devices - 1).forEach(({ head }, rank) => {
    subjectTo.push({
      name: `symmetry${rank}`,
      vars: Array.from({ length: rank + 1 }, (_, device) => ({ name: hostVar(0, head, device), coef: 1 })),
      bnds: { type: GLP_LO, lb: 1, ub: 0 },
    });
  });
}

/** Within a group of interchangeable devices, layer 0's device times are non-increasing (sort the group by time). */
function orderGroupTimes(costs: LayerCosts, group: number[], subjectTo: LP['subjectTo']): void {
  for (let index = 0; index + 1 < group.length; index++) {
    const [first, second] = [group[index]!, group[index + 1]!];
    const vars = costs.kv.flatMap((row, head) => [
      { name: hostVar(0, head, first), coef: costs.weight[first]! * TIME_SCALE },
      { name: shareVar(0, head, first), coef: row[first]! * TIME_SCALE },
      { name: hostVar(0, head, second), coef: -costs.weight[second]! * TIME_SCALE },
      { name: shareVar(0, head, second), coef: -row[second]! * TIME_SCALE },
    ]);
    subjectTo.push({ name: `order${first}_${second}`, vars, bnds: { type: GLP_LO, lb: 0, ub: 0 } });
  }
}

function addCoupling(input: IlpModelInput, coupling: IlpCoupling, subjectTo: LP['subjectTo']): void {
  const devices = input.bandwidth.length;
  for (let device = 0; device < devices; device++) {
    const row: { name: string; coef: number }[] = [];
    input.layers.forEach(({ costs }, layer) => {
      costs.kv.forEach((_, head) => {
        row.push(
          { name: hostVar(layer, head, device), coef: coupling.headWeightBytes * MEMORY_SCALE },
          { name: shareVar(layer, head, device), coef: coupling.kvMemoryBytes[layer]![head]! * MEMORY_SCALE },
        );
      });
    });
    subjectTo.push({
      name: `memory${device}`,
      vars: row,
      bnds: { type: GLP_UP, lb: 0, ub: coupling.memoryRoom[device]! * MEMORY_SCALE },
    });
  }
  const allHosts = input.layers.flatMap(({ costs }, layer) =>
    costs.kv.flatMap((_, head) =>
      Array.from({ length: devices }, (_, device) => ({ name: hostVar(layer, head, device), coef: 1 })),
    ),
  );
  const headCount = input.layers.reduce((sum, { costs }) => sum + costs.kv.length, 0);
  if (Number.isFinite(coupling.copyBudget)) {
    subjectTo.push({
      name: 'copyBudget',
      vars: allHosts,
      bnds: { type: GLP_UP, lb: 0, ub: headCount + coupling.copyBudget },
    });
  }
  if (Number.isFinite(coupling.totalUpperBound)) {
    subjectTo.push({
      name: 'totalUpperBound',
      vars: input.layers.map((_, layer) => ({ name: timeVar(layer), coef: 1 })),
      bnds: { type: GLP_UP, lb: 0, ub: coupling.totalUpperBound * TIME_SCALE },
    });
  }
}

/**
 * Reads a layer's shares back from a glpk solution (renormalised later). A device serves a head when its
 * hosting binary rounds to 1: glpk accepts a binary within its integrality tolerance (1e-5) of 0 or 1, and a
 * hosting variable at 1e-6 would otherwise let a sliver of the head onto a device that does not hold its
 * weights (a replica the model did not pay for, possibly past `maxReplicasPerHead`).
 */
export function readLayerShares(
  vars: Record<string, number>,
  layer: number,
  heads: number,
  devices: number,
): Map<number, number>[] {
  return Array.from({ length: heads }, (_, head) => {
    const replicas = new Map<number, number>();
    let largest = { device: 0, share: -1 };
    for (let device = 0; device < devices; device++) {
      const share = vars[shareVar(layer, head, device)] ?? 0;
      if (share > largest.share) largest = { device, share };
      if (share > 1e-9 && (vars[hostVar(layer, head, device)] ?? 0) >= 0.5) replicas.set(device, share);
    }
    if (replicas.size === 0) replicas.set(largest.device, 1);
    return replicas;
  });
}

/** Converts a glpk objective (microseconds) back to seconds. */
export function objectiveSeconds(z: number): number {
  return z / TIME_SCALE;
}
