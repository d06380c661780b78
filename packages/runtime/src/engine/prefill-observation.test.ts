import { describe, expect, it } from 'vitest';
import type { HostedHead } from './device-shards.js';
import { ownedHeadObservations } from './prefill-observation.js';

const head = (kvHead: number): HostedHead => ({ kvHead, replica: 0, share: 1, prefillOwner: true });

describe('ownedHeadObservations', () => {
  it("hands each owned head its group's rows of the kernel's accumulated scores and window rows", () => {
    const group = 2;
    const count = 3;
    const windowRows = 2;
    // [localQueryHead][T] and [localQueryHead][windowRows][T] with distinct values per element
    const accumulated = Float32Array.from({ length: 3 * group * count }, (_, i) => 100 + i);
    const scores = Float32Array.from({ length: 3 * group * windowRows * count }, (_, i) => i);
    const result = ownedHeadObservations({
      heads: [head(4), head(7), head(9)],
      owned: [true, false, true],
      groupSize: group,
      headDim: 8,
      tokenCount: count,
      windowRows,
      needs: { windowRows: 1, accumulated: true, keyNorms: false },
      scores,
      accumulated,
    });
    expect(result.map((entry) => entry.kvHead)).toEqual([4, 9]);
    expect(Array.from(result[0]!.accumulated!)).toEqual([100, 101, 102, 103, 104, 105]);
    expect(Array.from(result[1]!.accumulated!)).toEqual([112, 113, 114, 115, 116, 117]);
    // the last window row of each query head of the group
    expect(Array.from(result[0]!.windowScores!)).toEqual([3, 4, 5, 9, 10, 11]);
    expect(Array.from(result[1]!.windowScores!)).toEqual([27, 28, 29, 33, 34, 35]);
  });

  it('gives no accumulated scores when the policy reads none', () => {
    const [entry] = ownedHeadObservations({
      heads: [head(0)],
      owned: [true],
      groupSize: 1,
      headDim: 8,
      tokenCount: 2,
      windowRows: 0,
      needs: { windowRows: 0, accumulated: false, keyNorms: false },
      accumulated: new Float32Array(2),
    });
    expect(entry!.accumulated).toBeUndefined();
  });
});
