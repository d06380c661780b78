import { createCluster, duoAttentionProfile, getModelPreset } from '@fairkv/core';
import { solvePlacement } from '@fairkv/placement';
import { describe, expect, it } from 'vitest';
import { syntheticGates } from './demo-prompts.js';
import { type DemoRun, renderDemoReport, summaryTable } from './demo-report.js';
import type { WorkloadFigures } from './run-workload.js';

function figures(kvPeaks: number[], decodeTokensPerSecond: number): WorkloadFigures {
  return {
    results: [],
    devices: kvPeaks.map((kvBytesPeak, device) => ({
      device,
      kvBytesPeak,
      kvCapacityBytes: 4e6,
      allocatedBytes: 6e6,
      busySeconds: 1.5,
      kvHeadsPerLayer: [1, 1, 1, 1, 1],
    })),
    tokensPerSecond: decodeTokensPerSecond / 2,
    decodeTokensPerSecond,
    generatedTokens: 96,
    wallSeconds: 2,
    prefillSeconds: 1,
    decodeSeconds: 1,
  };
}

describe('demo report', () => {
  const model = getModelPreset('stories260k');
  const profile = duoAttentionProfile(syntheticGates(5, 4), { contextLength: 128, sinkSize: 4, recentSize: 16 });
  const request = { model, profile, cluster: createCluster('cpu', 4), batch: 'max' as const, dtype: 'f32' as const };
  const runs: DemoRun[] = (['contiguous', 'fair-copy'] as const).map((solver, index) => {
    const result = solvePlacement({ ...request, solver });
    return {
      solver,
      plan: result.plan,
      predicted: result.predicted,
      figures: index === 0 ? figures([900e3, 300e3, 300e3, 500e3], 100) : figures([520e3, 500e3, 490e3, 510e3], 90),
    };
  });

  it('synthetic gates make about one head in five a retrieval head, deterministically', () => {
    const gates = syntheticGates(32, 8);
    expect(syntheticGates(32, 8)).toEqual(gates);
    const retrieval = gates.flat().filter((gate) => gate >= 0.5).length / 256;
    expect(retrieval).toBeGreaterThan(0.1);
    expect(retrieval).toBeLessThan(0.35);
  });

  it('shows each plan per device and both side by side', () => {
    const text = renderDemoReport(runs, { sameText: true, seconds: 12.5, randomWeights: true });
    expect(text).toContain('contiguous plan (0 head copies)');
    expect(text).toMatch(/fair-copy plan \(\d+ head copies\)/);
    expect(text).toMatch(/^0\s+5\s+900 kB\s+#{20}/m);
    expect(text).toMatch(/^1\s+5\s+300 kB\s+#{7}\.{13}/m);
    expect(text).toContain('KV max/mean 1.80');
    expect(text).toContain('both plans generated identical text; 12.5 s in all');
    expect(text).toContain('random-weight model');
    const table = summaryTable(runs);
    expect(table).toMatch(/fullest device KV \(measured\)\s+900 kB\s+520 kB/);
    expect(table).toMatch(/KV max\/mean \(measured\)\s+1\.80\s+1\.03/);
    expect(table).toMatch(/tokens\/s at max batch \(cost model\)\s+[\d,.]+\s+[\d,.]+/);
    // the cost model ranks fair-copy above contiguous on these DuoAttention-shaped loads
    expect(runs[1]!.predicted.throughputTokensPerSecond).toBeGreaterThan(runs[0]!.predicted.throughputTokensPerSecond);
    expect(renderDemoReport(runs, { sameText: false, seconds: 1, randomWeights: false })).toContain(
      'the plans generated different text',
    );
  });
});
