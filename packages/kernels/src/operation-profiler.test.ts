import { describe, expect, it } from 'vitest';
import { OperationProfiler, sortedProfile } from './operation-profiler.js';

// the backends' startProfile/stopProfile are checked by the conformance suite (buffer-contract.ts)
describe('operation profiles', () => {
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
    expect(profile.calls).toBeUndefined();
  });

  it('sortedProfile keeps the call-by-call list in enqueue order', () => {
    const calls = [
      { name: 'b', startMilliseconds: 0, milliseconds: 1 },
      { name: 'a', startMilliseconds: 1, milliseconds: 1 },
    ];
    const profile = sortedProfile({
      operations: [
        { name: 'b', count: 1, milliseconds: 1 },
        { name: 'a', count: 1, milliseconds: 1 },
      ],
      busyMilliseconds: 0,
      spanMilliseconds: 2,
      calls,
    });
    expect(profile.operations.map((o) => o.name)).toEqual(['a', 'b']);
    expect(profile.calls).toEqual(calls);
  });
});
