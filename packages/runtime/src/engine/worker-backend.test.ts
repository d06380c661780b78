import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCluster, getModelPreset, ValidationError } from '@fairkv/core';
import { createCpuBackend } from '@fairkv/kernels';
import { solvePlacement } from '@fairkv/placement';
import { describe, expect, it } from 'vitest';
import {
  hasStories260k,
  STORIES_260K_PATH,
  STORIES_260K_SKIP_MESSAGE,
  storiesShapedProfile,
} from '../__fixtures__/shared.js';
import { loadModel } from '../model/load-model.js';
import { createLocalCommunicators } from './communicator.js';
import { createInferenceEngine } from './create-engine.js';
import { DeviceExecutor } from './device-executor.js';
import { inlineDeviceHandle } from './device-handle.js';
import { deviceShardsFromPlan } from './device-shards.js';
import { dummyShardWeights } from './dummy-weights.js';
import { ReplicaRouter } from './replica-router.js';
import { createWorkerDevices } from './worker-devices.js';

const fixtureModule = new URL('../__fixtures__/cpu-worker-device.ts', import.meta.url).href;
const config = getModelPreset('stories260k');
const fairCopyPlan = (batch: number) =>
  solvePlacement({
    model: config,
    profile: storiesShapedProfile(14),
    cluster: createCluster('cpu', 2),
    batch,
    solver: 'fair-copy',
  }).plan;

/** createWorkerDevices options for 2 small dummy-weight devices of a fair-copy plan (backend to add). */
const dummyDevices = (kvBlocks: number) => ({
  weights: { kind: 'dummy', seed: 1 } as const,
  config,
  shards: deviceShardsFromPlan(fairCopyPlan(2), config).shards,
  dtype: 'f32' as const,
  blockSize: 16,
  kvBlockCount: () => kvBlocks,
  maxPositions: 64,
});

describe('worker devices from a backend module', () => {
  it('dummy weights, synthetic admission and decode in 2 workers match 2 in-thread executors token for token', async () => {
    const plan = fairCopyPlan(3);
    const { shards, table } = deviceShardsFromPlan(plan, config);
    const router = new ReplicaRouter(table);
    const ids = ['a', 'b', 'c'];
    const kept = (r: number) =>
      shards[0]!.layers.map((_, l) => Int32Array.from({ length: 4 }, (_, h) => 6 + ((r + l + h) % 5) * 7));
    const routes = ids.map((id, r) => router.admit(id, kept(r)));
    // lengths[device][request][layer][local head], null where another replica serves the pair
    const lengths = shards.map((shard) =>
      ids.map((_, r) =>
        shard.layers.map((heads, l) =>
          heads.map((head) => (routes[r]![l]![head.kvHead] === head.replica ? kept(r)[l]![head.kvHead]! : null)),
        ),
      ),
    );
    expect(plan.layers.some((layer) => layer.heads.some((head) => head.replicas.length > 1))).toBe(true);
    const record = join(mkdtempSync(join(tmpdir(), 'fairkv-worker-module-')), 'setups.jsonl');
    const workers = await createWorkerDevices({
      weights: { kind: 'dummy', seed: 5 },
      config,
      shards,
      backend: { module: fixtureModule, options: { threads: 1, record } },
      dtype: 'bf16',
      blockSize: 16,
      kvBlockCount: () => 64,
      kvFill: 0.01,
      maxPositions: 128,
    });
    const communicators = createLocalCommunicators(2);
    const inline = shards.map((shard) =>
      inlineDeviceHandle(
        new DeviceExecutor({
          backend: createCpuBackend(),
          config,
          shard,
          weights: dummyShardWeights(config, shard, 5, 'bf16'),
          communicator: communicators[shard.device]!,
          dtype: 'bf16',
          kvBlockCount: 64,
          kvBlockSize: 16,
          maxPositions: 128,
          kvFill: 0.01,
        }),
      ),
    );
    try {
      const setups = readFileSync(record, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(setups.map((setup) => setup.device).sort()).toEqual([0, 1]);
      for (const setup of setups) expect(setup).toMatchObject({ deviceCount: 2, options: { threads: 1, record } });
      const runs: Int32Array[][] = [];
      for (const devices of [inline, workers]) {
        for (const [d, device] of devices.entries()) {
          for (const [r, id] of ids.entries()) await device.admitSynthetic(id, lengths[d]![r]!, 4);
        }
        const tokens: Int32Array[] = [];
        for (let step = 0; step < 3; step++) {
          const rows = ids.map((requestId, r) => ({ requestId, token: 10 + r + step, position: 40 + step }));
          const outputs = await Promise.all(devices.map((device) => device.decode(rows, undefined, false)));
          tokens.push(outputs.find((output) => output.tokens)!.tokens!);
        }
        runs.push(tokens);
      }
      expect(runs[1]).toEqual(runs[0]);
      const [workerStats, inlineStats] = await Promise.all([
        Promise.all(workers.map((device) => device.stats())),
        Promise.all(inline.map((device) => device.stats())),
      ]);
      expect(workerStats.map((stats) => stats.kvBytes)).toEqual(inlineStats.map((stats) => stats.kvBytes));
      expect(workerStats.every((stats) => stats.kvBytes > 0)).toBe(true);
    } finally {
      await Promise.all([...workers, ...inline].map((device) => device.dispose()));
    }
  });

  it('refuses a module without createWorkerDevice and an unknown backend name', async () => {
    const options = dummyDevices(8);
    const noExport = new URL('../model/seeded-random.ts', import.meta.url).href;
    await expect(createWorkerDevices({ ...options, backend: { module: noExport } })).rejects.toThrow(
      /seeded-random\.ts does not export a createWorkerDevice function/,
    );
    await expect(createWorkerDevices({ ...options, backend: 'cuda' as never })).rejects.toThrow(
      /backend: expected "cpu" or a backend module \{ module, options \} for worker devices, got "cuda"/,
    );
  });
});

describe.skipIf(!hasStories260k)('engine with a backend module', () => {
  it('generates the tokens of the built-in cpu workers, and refuses a module for inline execution', async () => {
    const model = await loadModel(STORIES_260K_PATH);
    const record = join(mkdtempSync(join(tmpdir(), 'fairkv-worker-module-')), 'setups.jsonl');
    try {
      const plan = fairCopyPlan(2);
      const tokens = [];
      for (const backend of ['cpu', { module: fixtureModule, options: { threads: 2, record } }] as const) {
        const engine = await createInferenceEngine({ model, plan, backend, execution: 'workers', maxPositions: 64 });
        try {
          tokens.push((await engine.generate('Once upon a time', { maxTokens: 8, stopAtEos: false }).result).tokenIds);
        } finally {
          await engine.dispose();
        }
      }
      expect(tokens[1]).toEqual(tokens[0]);
      expect(readFileSync(record, 'utf8').trim().split('\n')).toHaveLength(2);
      const inline = createInferenceEngine({ model, plan, backend: { module: fixtureModule }, execution: 'inline' });
      await expect(inline).rejects.toThrow(ValidationError);
      await expect(inline).rejects.toThrow(/needs execution: 'workers'|use execution: 'workers'/);
    } finally {
      model.close();
    }
  });
});
if (!hasStories260k) it.skip(STORIES_260K_SKIP_MESSAGE, () => {});

describe('worker device start-up in two phases', () => {
  const common = dummyDevices(16);
  const { shards } = common;

  it('connects every device only after all created their backends, through a blocking barrier', async () => {
    const record = join(mkdtempSync(join(tmpdir(), 'fairkv-worker-module-')), 'setups.jsonl');
    const barrier = new Int32Array(new SharedArrayBuffer(4));
    const devices = await createWorkerDevices({
      ...common,
      backend: { module: fixtureModule, options: { threads: 1, record, barrier } },
    });
    try {
      const lines = readFileSync(record, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      // both setups are written before either device connected
      expect(
        lines
          .slice(0, 2)
          .map((line) => line.device)
          .sort(),
      ).toEqual([0, 1]);
      expect(
        lines
          .slice(2)
          .map((line) => line.connected)
          .sort(),
      ).toEqual([0, 1]);
      expect(Atomics.load(barrier, 0)).toBe(2);
      // the connected devices decode together (each copied head served by its first replica)
      await Promise.all(
        devices.map((device, d) =>
          device.admitSynthetic(
            'a',
            shards[d]!.layers.map((heads) => heads.map((head) => (head.replica === 0 ? 4 : null))),
            2,
          ),
        ),
      );
      const outputs = await Promise.all(
        devices.map((device) => device.decode([{ requestId: 'a', token: 7, position: 4 }], undefined, false)),
      );
      expect(outputs.find((output) => output.tokens)?.tokens).toHaveLength(1);
    } finally {
      await Promise.all(devices.map((device) => device.dispose()));
    }
  });

  it('a device that fails to start fails the start-up at once, naming it, while the others never block', async () => {
    const record = join(mkdtempSync(join(tmpdir(), 'fairkv-worker-module-')), 'setups.jsonl');
    const barrier = new Int32Array(new SharedArrayBuffer(4));
    const started = performance.now();
    await expect(
      createWorkerDevices({
        ...common,
        backend: { module: fixtureModule, options: { threads: 1, record, barrier, failDevice: 1 } },
      }),
    ).rejects.toThrow(/device 1: simulated start-up failure on device 1/);
    // device 0 would wait at the barrier forever had it connected
    expect(Atomics.load(barrier, 0)).toBe(0);
    expect(performance.now() - started).toBeLessThan(30_000);
  });

  it('a device that fails to connect fails the start-up naming it, though the others still wait for it', async () => {
    const record = join(mkdtempSync(join(tmpdir(), 'fairkv-worker-module-')), 'setups.jsonl');
    const started = performance.now();
    await expect(
      createWorkerDevices({
        ...common,
        backend: { module: fixtureModule, options: { threads: 1, record, failConnect: 1 } },
      }),
    ).rejects.toThrow(/device 1: simulated connect failure on device 1/);
    // device 0's connect never settles: the start-up neither waited for it nor for its worker to end
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

describe.skipIf(!hasStories260k)('a device that fails part-way through a call', () => {
  const failures = [
    ['a prefill, before its first all-reduce', { device: 1, kernel: 'embedding-gather', call: 1 }],
    ['a decode step', { device: 1, kernel: 'ragged-decode-attention', call: 3 }],
  ] as const;
  for (const [when, failRun] of failures) {
    it(`in ${when}: the request fails with that device's error at once, the engine stops, dispose returns`, async () => {
      const model = await loadModel(STORIES_260K_PATH);
      const record = join(mkdtempSync(join(tmpdir(), 'fairkv-worker-module-')), 'setups.jsonl');
      const engine = await createInferenceEngine({
        model,
        plan: fairCopyPlan(2),
        backend: { module: fixtureModule, options: { threads: 1, record, failRun } },
        execution: 'workers',
        maxPositions: 64,
      });
      try {
        const started = performance.now();
        await expect(engine.generate('Once upon a time', { maxTokens: 8, stopAtEos: false }).result).rejects.toThrow(
          `device 1: simulated launch failure of ${failRun.kernel} on device 1`,
        );
        // device 0 waited in an all-reduce for device 1: released by the abort, not by the shared-memory
        // barrier's own 60 s timeout
        expect(performance.now() - started).toBeLessThan(20_000);
        expect(() => engine.generate('Once')).toThrow(
          /the engine stopped after a device failed \(device 1: simulated launch failure of .* on device 1\); dispose it/,
        );
        // dispose waits for the module's abort, which the coordinator called
        await engine.dispose();
        expect(readFileSync(record, 'utf8')).toContain('{"aborted":true}');
      } finally {
        await engine.dispose();
        model.close();
      }
    });
  }

  for (const given of [false, true]) {
    it(`in-thread devices${given ? ' over given communicators (no abort)' : ''}: the request fails with the device error at once and the engine stops`, async () => {
      const model = await loadModel(STORIES_260K_PATH);
      try {
        let device1Runs = 0;
        const engine = await createInferenceEngine({
          model,
          plan: fairCopyPlan(2),
          execution: 'inline',
          maxPositions: 64,
          // copies of in-memory communicators: the same all-reduce, without the group abort
          ...(given ? { communicators: createLocalCommunicators(2).map((communicator) => ({ ...communicator })) } : {}),
          backend: (device) => {
            const backend = createCpuBackend();
            if (device === 1) {
              const run = backend.run.bind(backend);
              backend.run = (kernel, args) => {
                if (kernel === 'swiglu' && ++device1Runs === 2) throw new Error('simulated failure on device 1');
                run(kernel, args);
              };
            }
            return backend;
          },
        });
        const started = performance.now();
        await expect(engine.generate('Once upon a time', { maxTokens: 4 }).result).rejects.toThrow(
          'simulated failure on device 1',
        );
        // not the 10 s the engine gives aborted devices to return: there is no device left to wait for
        expect(performance.now() - started).toBeLessThan(5_000);
        expect(() => engine.generate('Once')).toThrow(/the engine stopped after a device failed/);
        await engine.dispose();
      } finally {
        model.close();
      }
    });
  }
});
