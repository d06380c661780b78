/**
 * bench/placement: predicted throughput of every placement solver (FairKV, arXiv 2502.15804) relative to
 * standard TP, balance figures, copies, solve times and the ILP proof, on h100-sxm-80g x {2, 4, 8}.
 * Run: `npx tsx bench/placement/run.ts`. Writes bench/placement/results/placement.json.
 * See bench/placement/NOTES.md for what the figures mean.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  CapacityError,
  CLUSTER_PRESETS,
  type ClusterSpec,
  createCluster,
  duoAttentionProfile,
  getModelPreset,
  type HeadLoadProfile,
  type ModelConfig,
  parseDuoAttentionGates,
  tileProfileLayers,
} from '@fairkv/core';
import {
  type PlacementPrediction,
  type PlacementResult,
  solvePlacement,
  syntheticHeavyTailedProfile,
} from '@fairkv/placement';
import { type IlpResult, solveIlp } from '@fairkv/placement/ilp';
import { gitCommit } from '../git-commit.js';

const CONTEXT = 32768;
const MODELS = ['llama-3.1-8b', 'mistral-small-24b-2501', 'llama-3.3-70b'];
const DUO_MODELS = ['Meta-Llama-3.1-8B-Instruct', 'Llama-3-8B-Instruct-Gradient-1048k', 'Mistral-7B-Instruct-v0.2'];
const DEVICE_COUNTS = [2, 4, 8];
const BATCHES: (number | 'max')[] = ['max', 16];
const SOLVERS = ['contiguous', 'greedy', 'fair-copy', 'ilp'] as const;

const here = fileURLToPath(new URL('.', import.meta.url));
const sharedProfiles = fileURLToPath(new URL('../../../shared/profiles/duo-attention/', import.meta.url));

function profilesFor(model: ModelConfig): { name: string; profile: HeadLoadProfile; note: string }[] {
  const profiles = [];
  for (const duoModel of DUO_MODELS) {
    const file = `${sharedProfiles}${duoModel}/full_attention_heads.tsv`;
    if (!existsSync(file)) {
      console.warn(`skipping DuoAttention ${duoModel}: ${file} not found (../shared missing)`);
      continue;
    }
    const gates = parseDuoAttentionGates(readFileSync(file, 'utf8'), file);
    const base = duoAttentionProfile(gates, {
      selection: { sparsity: 0.5 },
      contextLength: CONTEXT,
      source: file,
      model: duoModel,
    });
    const tiled = gates.length === model.layerCount ? base : tileProfileLayers(base, model.layerCount);
    const note =
      gates.length === model.layerCount
        ? `DuoAttention gates of ${duoModel}, sparsity 0.5`
        : `DuoAttention gates of ${duoModel} (${gates.length} layers) repeated to ${model.layerCount} layers, sparsity 0.5`;
    profiles.push({ name: `duo:${duoModel}`, profile: tiled, note });
  }
  const synthetic = syntheticHeavyTailedProfile({
    layerCount: model.layerCount,
    kvHeadCount: model.kvHeadCount,
    contextLength: CONTEXT,
    seed: 1,
  });
  profiles.push({
    name: 'synthetic:ada-kv-like',
    profile: synthetic,
    note: `${synthetic.source}: log-normal head budgets, 20% of context on average`,
  });
  return profiles;
}

function figures(result: PlacementResult): Record<string, unknown> {
  const predicted: PlacementPrediction = result.predicted;
  const imbalance = predicted.layerImbalance;
  const row: Record<string, unknown> = {
    batch: predicted.batch,
    maxBatch: predicted.maxBatch,
    stepTimeMs: predicted.stepTimeSeconds * 1e3,
    throughputTokensPerSecond: predicted.throughputTokensPerSecond,
    efficiency: predicted.efficiency,
    meanLayerImbalance: imbalance.reduce((sum, value) => sum + value, 0) / imbalance.length,
    maxLayerImbalance: Math.max(...imbalance),
    memoryMaxGB: predicted.memoryMaxBytes / 1e9,
    memoryMeanGB: predicted.memoryMeanBytes / 1e9,
    copies: predicted.copyCount,
    solveSeconds: result.solveSeconds,
    optimal: result.optimal,
  };
  if ('mode' in result) {
    const ilp = result as IlpResult;
    Object.assign(row, {
      gap: ilp.gap,
      coupled: ilp.coupled,
      glpk: ilp.mode,
      layerProofs: ilp.layerProofs,
      distinctLayers: ilp.modelCount,
    });
  }
  return row;
}

async function run(
  solver: (typeof SOLVERS)[number],
  request: Parameters<typeof solveIlp>[0],
): Promise<PlacementResult> {
  if (solver === 'ilp') return solveIlp(request);
  return solvePlacement({ ...request, solver });
}

/** A mixed node (4 x H100 + 4 x A100) for the 70B model: the heterogeneous group bound at 80 x 8 x 8. */
function mixedCluster(): ClusterSpec {
  const h100 = CLUSTER_PRESETS['h100-sxm-80g']!;
  const a100 = CLUSTER_PRESETS['a100-80g']!;
  return {
    name: '4x-h100-sxm-80g+4x-a100-80g',
    devices: [
      ...Array.from({ length: 4 }, () => ({ ...h100.device })),
      ...Array.from({ length: 4 }, () => ({ ...a100.device })),
    ],
    interconnect: { ...a100.interconnect },
  };
}

const cases: Record<string, unknown>[] = [];
const started = performance.now();
for (const modelName of MODELS) {
  const model = getModelPreset(modelName);
  for (const { name: profileName, profile, note } of profilesFor(model)) {
    const clusters = DEVICE_COUNTS.map((count) => createCluster('h100-sxm-80g', count));
    if (modelName === 'llama-3.3-70b') clusters.push(mixedCluster());
    for (const cluster of clusters) {
      const deviceCount = cluster.devices.length;
      for (const batch of BATCHES) {
        const entry: Record<string, unknown> = {
          model: modelName,
          profile: profileName,
          profileNote: note,
          cluster: cluster.name,
          deviceCount,
          batch,
          solvers: {},
        };
        const solvers = entry.solvers as Record<string, unknown>;
        let contiguous: PlacementResult | undefined;
        let fairCopy: PlacementResult | undefined;
        for (const solver of SOLVERS) {
          try {
            const result = await run(solver, { model, profile, cluster, batch });
            solvers[solver] = figures(result);
            if (solver === 'contiguous') contiguous = result;
            if (solver === 'fair-copy') fairCopy = result;
            if (contiguous) {
              (solvers[solver] as Record<string, unknown>).speedupVsContiguous =
                result.predicted.throughputTokensPerSecond / contiguous.predicted.throughputTokensPerSecond;
            }
            if (solver === 'ilp' && fairCopy) {
              entry.fairCopyStepOverIlp = fairCopy.predicted.stepTimeSeconds / result.predicted.stepTimeSeconds - 1;
              entry.ilpThroughputOverFairCopy =
                result.predicted.throughputTokensPerSecond / fairCopy.predicted.throughputTokensPerSecond - 1;
            }
          } catch (error) {
            if (!(error instanceof CapacityError)) throw error;
            solvers[solver] = { error: error.message };
          }
        }
        cases.push(entry);
        const fc = solvers['fair-copy'] as Record<string, number> | undefined;
        const ilp = solvers.ilp as Record<string, number> | undefined;
        console.log(
          `${modelName.padEnd(22)} ${profileName.padEnd(45)} ${cluster.name === 'h100-sxm-80g' ? '' : `${cluster.name} `}G=${deviceCount} batch=${String(batch).padEnd(3)} ` +
            (fc?.speedupVsContiguous
              ? `fair-copy x${fc.speedupVsContiguous.toFixed(3)} ilp x${ilp?.speedupVsContiguous?.toFixed(3)} ` +
                `ilp ${ilp?.solveSeconds?.toFixed(3)} s optimal=${ilp?.optimal} fc-gap ${(100 * (entry.fairCopyStepOverIlp as number)).toFixed(3)}%`
              : 'does not fit'),
        );
      }
    }
  }
}

type Case = {
  model: string;
  cluster: string;
  deviceCount: number;
  batch: number | 'max';
  solvers: Record<string, Record<string, number | boolean>>;
  fairCopyStepOverIlp?: number;
};
const solved = (cases as Case[]).filter((entry) => typeof entry.solvers.ilp?.solveSeconds === 'number');
const target = solved.filter(
  (entry) => entry.model === 'llama-3.3-70b' && entry.deviceCount === 8 && entry.cluster === 'h100-sxm-80g',
);
const mixed = solved.filter((entry) => entry.cluster !== 'h100-sxm-80g');
const summary = {
  cases: cases.length,
  casesThatFit: solved.length,
  ilpProvenOptimal: solved.filter((entry) => entry.solvers.ilp!.optimal === true).length,
  ilpCoupledByMemory: solved.filter((entry) => entry.solvers.ilp!.coupled === true).length,
  ilpMaxSolveSeconds: Math.max(...solved.map((entry) => entry.solvers.ilp!.solveSeconds as number)),
  target80x8x8: {
    description: 'llama-3.3-70b (80 layers x 8 kv heads) on 8 x H100: ILP proven optimal in under 2 s',
    runs: target.length,
    proven: target.filter((entry) => entry.solvers.ilp!.optimal === true).length,
    maxSolveSeconds: Math.max(...target.map((entry) => entry.solvers.ilp!.solveSeconds as number)),
  },
  mixedCluster80x8x8: {
    description: 'llama-3.3-70b on 4 x H100 + 4 x A100: the heterogeneous group bound',
    runs: mixed.length,
    proven: mixed.filter((entry) => entry.solvers.ilp!.optimal === true).length,
    maxSolveSeconds: Math.max(...mixed.map((entry) => entry.solvers.ilp!.solveSeconds as number)),
  },
  fairCopyMaxStepGapOverIlpAtBatch16: Math.max(
    ...solved.filter((entry) => entry.batch === 16).map((entry) => entry.fairCopyStepOverIlp ?? 0),
  ),
  ilpMaxThroughputGainOverFairCopyAtMaxBatch: Math.max(
    ...(solved as (Case & { ilpThroughputOverFairCopy?: number })[])
      .filter((entry) => entry.batch === 'max')
      .map((entry) => entry.ilpThroughputOverFairCopy ?? 0),
  ),
  bestSpeedupVsContiguous: Object.fromEntries(
    MODELS.map((model) => [
      model,
      Object.fromEntries(
        ['greedy', 'fair-copy', 'ilp'].map((solver) => [
          solver,
          Math.max(
            ...solved
              .filter((entry) => entry.model === model && entry.batch === 'max' && entry.cluster === 'h100-sxm-80g')
              .map((entry) => (entry.solvers[solver]?.speedupVsContiguous as number) ?? 0),
          ),
        ]),
      ),
    ]),
  ),
};
const commit = gitCommit(here);
const output = {
  benchmark: 'placement',
  description:
    'Predicted (cost model, docs/cost-model.md) throughput of each solver relative to contiguous TP, balance, copies, solve time; ' +
    `h100-sxm-80g, bf16, ${CONTEXT}-token context, DuoAttention sparsity 0.5 (8B gate rows repeated to 40/80 layers for 24B/70B) and a synthetic Ada-KV-like profile`,
  machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadAverage: os.loadavg(), node: process.version },
  gitCommit: commit,
  date: new Date().toISOString(),
  wallSeconds: (performance.now() - started) / 1000,
  summary,
  cases,
};
mkdirSync(`${here}results`, { recursive: true });
writeFileSync(`${here}results/placement.json`, `${JSON.stringify(output, null, 2)}\n`);
console.log(JSON.stringify(summary, null, 2));
