import { describe, expect, it } from 'vitest';
import {
  abortLocalCommunicators,
  abortSharedCommunicators,
  CollectiveAbortedError,
  createLocalCommunicators,
  createSharedCommunicatorState,
  SharedMemoryCommunicator,
  SoloCommunicator,
} from './communicator.js';

describe('aborting a communicator group', () => {
  it('in-thread: a rank waiting for the others rejects, and so does every later all-reduce', async () => {
    const group = createLocalCommunicators(3);
    const waiting = group[0]!.allReduceSum(Float32Array.of(1, 2));
    const alsoWaiting = group[2]!.allReduceSum(Float32Array.of(3, 4));
    expect(abortLocalCommunicators(group)).toBe(true);
    await expect(waiting).rejects.toThrow(CollectiveAbortedError);
    await expect(alsoWaiting).rejects.toThrow('all-reduce on rank 2 aborted: another device failed');
    await expect(group[1]!.allReduceSum(Float32Array.of(5, 6))).rejects.toThrow(CollectiveAbortedError);
    // another group is unaffected, and one not made here is left alone
    const other = createLocalCommunicators(2);
    const sums = [Float32Array.of(1), Float32Array.of(2)];
    await Promise.all(other.map((communicator, rank) => communicator.allReduceSum(sums[rank]!)));
    expect(sums.map((sum) => sum[0])).toEqual([3, 3]);
    expect(abortLocalCommunicators([new SoloCommunicator()])).toBe(false);
  });

  it('shared memory: after the abort a rank throws instead of waiting at the barrier', async () => {
    const state = createSharedCommunicatorState(2, 8);
    const rank0 = new SharedMemoryCommunicator(state, 0, 5_000);
    abortSharedCommunicators(state);
    const started = performance.now();
    await expect(rank0.allReduceSum(Float32Array.of(1))).rejects.toThrow(
      'all-reduce on rank 0 aborted: another device failed (worker threads)',
    );
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});
