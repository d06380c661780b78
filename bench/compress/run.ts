/**
 * Policy cost per layer for one 32K-token prompt with 8 kv heads x group 4 (Llama-3.1-8B's attention shape),
 * observation window 32: the work `@fairkv/compress` adds after each layer's prefill, once per request.
 * Writes bench/compress/results/compress.json. Run: `npx tsx bench/compress/run.ts [--layers N]`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  adaKvPolicy,
  type CompressionPolicy,
  duoAttentionPolicy,
  fullPolicy,
  h2oPolicy,
  headKvPolicy,
  type LayerObservation,
  pyramidKvPolicy,
  snapKvPolicy,
  snapKvScorer,
  streamingLlmPolicy,
} from '@fairkv/compress';
import { parseDuoAttentionGates, seededRandom } from '@fairkv/core';
import { gitCommit } from '../git-commit.js';

const seqLen = 32768;
const kvHeadCount = 8;
const group = 4;
const queryHeadCount = kvHeadCount * group;
const windowSize = 32;
const layerCount = 32;
const averageBudget = 2048;
const argLayers = process.argv.indexOf('--layers');
const timedLayers = argLayers > 0 ? Number(process.argv[argLayers + 1]) : 12;

/** Peaked causal softmax rows (a few keys take most attention), heads of different concentration. */
function syntheticObservation(seed: number): LayerObservation {
  const random = seededRandom(seed);
  const windowScores = new Float32Array(queryHeadCount * windowSize * seqLen);
  for (let head = 0; head < queryHeadCount; head++) {
    const sharpness = 2 + (head % 7) * 3;
    for (let row = 0; row < windowSize; row++) {
      const visible = seqLen - windowSize + row + 1;
      const base = (head * windowSize + row) * seqLen;
      let sum = 0;
      for (let key = 0; key < visible; key++) {
        const value = random() ** sharpness;
        windowScores[base + key] = value;
        sum += value;
      }
      const scale = 1 / sum;
      for (let key = 0; key < visible; key++) windowScores[base + key]! *= scale;
    }
  }
  const accumulatedAttention = new Float32Array(queryHeadCount * seqLen);
  for (let i = 0; i < accumulatedAttention.length; i++) accumulatedAttention[i] = random() ** 6 * 50;
  return { seqLen, queryHeadCount, kvHeadCount, windowScores, accumulatedAttention };
}

function duoGates(): { gates: number[][]; source: string } {
  const file = fileURLToPath(
    new URL(
      '../../../shared/profiles/duo-attention/Meta-Llama-3.1-8B-Instruct/full_attention_heads.tsv',
      import.meta.url,
    ),
  );
  if (existsSync(file))
    return { gates: parseDuoAttentionGates(readFileSync(file, 'utf8')), source: 'Meta-Llama-3.1-8B-Instruct gates' };
  const random = seededRandom(9);
  return {
    gates: Array.from({ length: layerCount }, () => Array.from({ length: kvHeadCount }, random)),
    source: 'synthetic gates',
  };
}

function percentile(sorted: number[], q: number): number {
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.min(lower + 1, sorted.length - 1);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}

interface Timing {
  /** Wall-clock milliseconds per layer: median, 90th percentile, min, max. */
  medianMs: number;
  p90Ms: number;
  minMs: number;
  maxMs: number;
  /** Process CPU milliseconds (user + system) per layer, median and min: less sensitive to a loaded machine. */
  cpuMedianMs: number;
  cpuMinMs: number;
  keptTokens: number;
}

function time(run: (layerIndex: number) => number): Timing {
  run(0);
  run(1);
  const wall: number[] = [];
  const cpu: number[] = [];
  let keptTokens = 0;
  for (let i = 0; i < timedLayers; i++) {
    const layerIndex = (i * 5) % layerCount;
    const cpuStart = process.cpuUsage();
    const start = process.hrtime.bigint();
    keptTokens += run(layerIndex);
    wall.push(Number(process.hrtime.bigint() - start) / 1e6);
    const used = process.cpuUsage(cpuStart);
    cpu.push((used.user + used.system) / 1000);
  }
  wall.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  const round = (value: number) => Math.round(value * 1000) / 1000;
  return {
    medianMs: round(percentile(wall, 0.5)),
    p90Ms: round(percentile(wall, 0.9)),
    minMs: round(wall[0]!),
    maxMs: round(wall[wall.length - 1]!),
    cpuMedianMs: round(percentile(cpu, 0.5)),
    cpuMinMs: round(cpu[0]!),
    keptTokens: Math.round(keptTokens / timedLayers),
  };
}

function report(label: string, figures: Timing): void {
  const wall = `wall median ${figures.medianMs.toFixed(2)} (min ${figures.minMs.toFixed(2)})`;
  const cpu = `cpu median ${figures.cpuMedianMs.toFixed(2)} (min ${figures.cpuMinMs.toFixed(2)})`;
  console.log(`${label.padEnd(22)} ${wall}  ${cpu} ms/layer  kept ${figures.keptTokens} tokens/layer`);
}

const started = Date.now();
const observation = syntheticObservation(1);
const generationSeconds = (Date.now() - started) / 1000;
const windowAttentionSums = new Float32Array(queryHeadCount * seqLen);
for (let head = 0; head < queryHeadCount; head++) {
  for (let row = 0; row < windowSize; row++) {
    const base = (head * windowSize + row) * seqLen;
    for (let key = 0; key < seqLen; key++)
      windowAttentionSums[head * seqLen + key]! += observation.windowScores![base + key]!;
  }
}
const { windowScores: _full, ...withoutScores } = observation;
const reducedObservation: LayerObservation = { ...withoutScores, windowAttentionSums, windowAttentionRows: windowSize };
const { gates, source: gatesSource } = duoGates();
const importance = Array.from({ length: layerCount }, (_, layer) =>
  Array.from({ length: queryHeadCount }, (_, head) => 0.05 + (((layer * 31 + head * 17) % 23) / 23) ** 3),
);
const scoring = { averageBudget, windowSize };
const policies: CompressionPolicy[] = [
  fullPolicy(),
  streamingLlmPolicy(),
  snapKvPolicy(scoring),
  pyramidKvPolicy(scoring),
  adaKvPolicy(scoring),
  adaKvPolicy({ ...scoring, variant: 'kvpress' }),
  adaKvPolicy({ ...scoring, pyramid: true }),
  headKvPolicy({ ...scoring, importance }),
  duoAttentionPolicy({ gates, gatesSource }),
  h2oPolicy(),
];
const labels = [
  'full',
  'streaming-llm',
  'snapkv',
  'pyramidkv',
  'ada-kv',
  'ada-kv (kvpress)',
  'ada-kv + pyramid',
  'headkv',
  'duo-attention',
  'h2o',
];
/** The window-scoring policies again, fed device-reduced window sums instead of the full window block. */
const reducedRuns: [string, CompressionPolicy][] = [
  ['snapkv (window sums)', snapKvPolicy(scoring)],
  ['ada-kv (window sums)', adaKvPolicy(scoring)],
  ['headkv (window sums)', headKvPolicy({ ...scoring, importance })],
];

const results: Record<string, unknown>[] = [];
const scorer = snapKvScorer();
const scoreOnly = time(() => {
  scorer.score({ observation, windowSize, prefixLength: seqLen - windowSize, groupReduction: 'mean' });
  return 0;
});
results.push({
  policy: 'snapkv scorer alone (window mean + GQA mean + max pool)',
  ...scoreOnly,
  keptTokens: 0,
});
policies.forEach((policy, index) => {
  const figures = time((layerIndex) => {
    const result = policy.compressLayer(observation, { layerIndex, layerCount });
    return result.budgets.reduce((sum, budget) => sum + budget, 0);
  });
  results.push({ policy: labels[index], settings: policy.settings, ...figures });
  report(labels[index]!, figures);
});
for (const [label, policy] of reducedRuns) {
  const figures = time((layerIndex) => {
    const result = policy.compressLayer(reducedObservation, { layerIndex, layerCount });
    return result.budgets.reduce((sum, budget) => sum + budget, 0);
  });
  results.push({ policy: label, settings: policy.settings, ...figures });
  report(label, figures);
}
report('snapkv scorer alone', scoreOnly);

const commit = gitCommit();
const output = {
  benchmark: 'compress',
  description: 'CompressionPolicy.compressLayer wall time per layer, one 32K prompt, synthetic peaked attention',
  shape: {
    seqLen,
    queryHeadCount,
    kvHeadCount,
    windowSize,
    layerCount,
    averageBudget,
    windowScoreBytes: observation.windowScores!.byteLength,
  },
  timedLayersPerPolicy: timedLayers,
  inputGenerationSeconds: generationSeconds,
  machine: {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    node: process.version,
    loadAverageAtEnd: loadavg(),
  },
  commit,
  date: new Date().toISOString(),
  results,
};
const directory = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(directory, { recursive: true });
writeFileSync(`${directory}compress.json`, `${JSON.stringify(output, null, 2)}\n`);
console.log(`wrote ${directory}compress.json`);
