import { describe, expect, it } from 'vitest';
import { createCpuBackend } from './cpu/cpu-backend.js';
import { OperationProfiler, sortedProfile } from './operation-profiler.js';

describe('operation profiles', () => {
  it('the CPU backend times each operation by name between startProfile and stopProfile', async () => {
    const backend = createCpuBackend();
    const input = backend.createBuffer({ dtype: 'f32', elementCount: 64 });
    const weight = backend.createBuffer({ dtype: 'f32', elementCount: 64 * 32 });
    const output = backend.createBuffer({ dtype: 'f32', elementCount: 2 * 32 });
    backend.upload(input, new Float32Array(64).fill(1)); // before the window: not counted
    backend.startProfile();
    backend.upload(weight, new Float32Array(64 * 32).fill(0.5));
    backend.fill(output, 0);
    for (let i = 0; i < 3; i++) {
      backend.run('matmul', { input, weight, output, rowCount: 2, innerSize: 32, outerSize: 32 });
    }
    await backend.download(output);
    const profile = await backend.stopProfile();
    const counts = Object.fromEntries(profile.operations.map((o) => [o.name, o.count]));
    expect(counts).toEqual({ upload: 1, fill: 1, matmul: 3, download: 1 });
    const times = profile.operations.map((o) => o.milliseconds);
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(profile.busyMilliseconds).toBeCloseTo(
      times.reduce((a, b) => a + b, 0),
      9,
    );
    expect(profile.spanMilliseconds).toBeGreaterThanOrEqual(profile.busyMilliseconds - 1e-9);
    // the window is closed: later operations are not timed
    backend.fill(output, 1);
    expect((await backend.stopProfile()).operations).toEqual([]);
    backend.dispose();
  });

  it('an operation that throws is still timed and the error passes through', () => {
    const profiler = new OperationProfiler();
    profiler.start();
    expect(() =>
      profiler.time('boom', () => {
        throw new Error('bad');
      }),
    ).toThrow('bad');
    expect(profiler.stop().operations.map((o) => [o.name, o.count])).toEqual([['boom', 1]]);
  });

  it('sortedProfile orders by time, then name, and sums busy time', () => {
    const profile = sortedProfile({
      operations: [
        { name: 'b', count: 1, milliseconds: 1 },
        { name: 'c', count: 2, milliseconds: 3 },
        { name: 'a', count: 1, milliseconds: 1 },
      ],
      busyMilliseconds: 0,
      spanMilliseconds: 7,
    });
    expect(profile.operations.map((o) => o.name)).toEqual(['c', 'a', 'b']);
    expect(profile.busyMilliseconds).toBe(5);
    expect(profile.spanMilliseconds).toBe(7);
  });
});
