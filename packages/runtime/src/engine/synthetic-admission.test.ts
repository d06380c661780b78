import { getModelPreset } from '@fairkv/core';
import { createCpuBackend, f32ToBf16Bits } from '@fairkv/kernels';
import { describe, expect, it } from 'vitest';
import { SoloCommunicator } from './communicator.js';
import { DeviceExecutor } from './device-executor.js';
import { deviceShardsFromPlan, singleDevicePlan } from './device-shards.js';
import { dummyShardWeights } from './dummy-weights.js';
import type { ShardWeights } from './shard-weights.js';

describe('decode benchmarks without prefill', () => {
  it('runs decode steps over synthetically admitted requests with raw bf16 host weights', async () => {
    const config = getModelPreset('stories260k');
    const { shards } = deviceShardsFromPlan(singleDevicePlan(config), config);
    const shard = shards[0]!;
    let state = 7;
    const random = (count: number) =>
      Uint16Array.from({ length: count }, () => {
        state = (state * 1103515245 + 12345) >>> 0;
        return f32ToBf16Bits((state / 2 ** 32 - 0.5) * 0.2);
      });
    const ones = (count: number) => new Uint16Array(count).fill(f32ToBf16Bits(1));
    const { hiddenSize: hidden, headDim, vocabSize, ffnSize } = config;
    const weights: ShardWeights = {
      tokenEmbedding: random(vocabSize * hidden),
      layers: shard.layers.map((heads) => ({
        attentionNorm: ones(hidden),
        wq: random(heads.length * 2 * headDim * hidden),
        wk: random(heads.length * headDim * hidden),
        wv: random(heads.length * headDim * hidden),
        wo: random(hidden * heads.length * 2 * headDim),
        ffnNorm: ones(hidden),
        wGate: random(ffnSize * hidden),
        wUp: random(ffnSize * hidden),
        wDown: random(hidden * ffnSize),
      })),
      outputNorm: ones(hidden),
      output: random(vocabSize * hidden),
    };
    const executor = new DeviceExecutor({
      backend: createCpuBackend(),
      config,
      shard,
      weights,
      communicator: new SoloCommunicator(),
      dtype: 'bf16',
      kvBlockCount: 200,
      kvBlockSize: 16,
      maxPositions: 128,
      kvFill: 0.01,
    });
    try {
      // heads keep 40 or 3 tokens: 5 layers x (2 heads x ceil(44/16) + 2 heads x ceil(7/16)) = 40 blocks per request
      const lengths = shard.layers.map((heads) => heads.map((_, h) => (h % 2 === 0 ? 40 : 3)));
      executor.admitSynthetic('a', lengths, 4);
      executor.admitSynthetic('b', lengths, 4);
      expect(executor.kv.allocator.usedBlockCount).toBe(80);
      for (let step = 0; step < 3; step++) {
        const rows = ['a', 'b'].map((requestId, r) => ({ requestId, token: 5 + r, position: 40 + step }));
        const { tokens } = await executor.decode(rows, undefined, false);
        expect(tokens).toHaveLength(2);
        for (const token of tokens!) expect(token).toBeGreaterThanOrEqual(0);
      }
      expect(executor.kv.get('a', 0, 0)!.length).toBe(43);
      expect(executor.kv.get('a', 0, 1)!.length).toBe(6);
      expect(() =>
        executor.admitSynthetic(
          'c',
          shard.layers.map((heads) => heads.map(() => 2000)),
          0,
        ),
      ).toThrow(/KV pool of device 0 is full/);
      expect(executor.kv.sequencesOf('c')).toBeUndefined();
      executor.release('a');
      expect(executor.kv.allocator.usedBlockCount).toBe(40);
    } finally {
      executor.dispose();
    }
  });

  it('uploads the block table only when it changed (admission, a sequence growing by a block)', async () => {
    const config = getModelPreset('stories260k');
    const { shards } = deviceShardsFromPlan(singleDevicePlan(config), config);
    const shard = shards[0]!;
    const cpu = createCpuBackend();
    let tableUploads = 0;
    const backend = new Proxy(cpu, {
      get(target, property, receiver) {
        if (property === 'upload') {
          return (buffer: { label: string }, ...rest: unknown[]) => {
            if (buffer.label === 'block-table') tableUploads++;
            return (target.upload as (...args: unknown[]) => void)(buffer, ...rest);
          };
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const executor = new DeviceExecutor({
      backend,
      config,
      shard,
      weights: dummyShardWeights(config, shard, 2, 'f32'),
      communicator: new SoloCommunicator(),
      kvBlockCount: 200,
      kvBlockSize: 16,
      maxPositions: 128,
      kvFill: 0.01,
    });
    try {
      // 46 tokens + 1 reserved = 3 blocks = room for 48: steps 1 and 2 fit, step 3 needs a 4th block
      executor.admitSynthetic(
        'a',
        shard.layers.map((heads) => heads.map(() => 46)),
        1,
      );
      const uploadsPerStep: number[] = [];
      for (let step = 0; step < 5; step++) {
        const before = tableUploads;
        await executor.decode([{ requestId: 'a', token: 3, position: 46 + step }], undefined, false);
        uploadsPerStep.push(tableUploads - before);
      }
      expect(uploadsPerStep).toEqual([1, 0, 1, 0, 0]);
      expect(executor.kv.get('a', 0, 0)!.length).toBe(51);
    } finally {
      executor.dispose();
    }
  });
});
