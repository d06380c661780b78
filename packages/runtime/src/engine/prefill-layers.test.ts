import { getModelPreset } from '@fairkv/core';
import { createCpuBackend } from '@fairkv/kernels';
import { describe, expect, it } from 'vitest';
import { SoloCommunicator } from './communicator.js';
import { DeviceExecutor } from './device-executor.js';
import { deviceShardsFromPlan, singleDevicePlan } from './device-shards.js';
import { dummyShardWeights } from './dummy-weights.js';
import type { HeadObservation } from './prefill-observation.js';

describe('prefill observations layer by layer', () => {
  it('hands each layer to onLayer, in order, with what the prefill returns without it', async () => {
    const config = getModelPreset('stories260k');
    const { shards } = deviceShardsFromPlan(singleDevicePlan(config), config);
    const shard = shards[0]!;
    const executor = new DeviceExecutor({
      backend: createCpuBackend(),
      config,
      shard,
      weights: dummyShardWeights(config, shard, 3, 'f32'),
      communicator: new SoloCommunicator(),
      kvBlockCount: 64,
      kvBlockSize: 16,
      maxPositions: 128,
    });
    try {
      const tokens = Int32Array.from({ length: 37 }, (_, i) => (i * 17 + 5) % config.vocabSize);
      const needs = { windowRows: 8, accumulated: true, keyNorms: true };
      const whole = await executor.prefill('whole', tokens, needs);
      executor.discard('whole');
      const received: [number, HeadObservation[]][] = [];
      const streamed = await executor.prefill('streamed', tokens, needs, (layer, heads) =>
        received.push([layer, heads]),
      );
      executor.discard('streamed');
      expect(received.map(([layer]) => layer)).toEqual(Array.from({ length: config.layerCount }, (_, l) => l));
      expect(received.map(([, heads]) => heads)).toEqual(whole.layers);
      expect(whole.layers[0]![0]!.windowSums).toHaveLength((config.queryHeadCount / config.kvHeadCount) * 37);
      expect(streamed.layers).toEqual([]);
      expect(streamed.logits).toEqual(whole.logits);
    } finally {
      executor.dispose();
    }
  });
});
