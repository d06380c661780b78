import { describe, expect, it } from 'vitest';
import type { HostedHead } from './device-shards.js';
import { ownedHeadObservations } from './prefill-observation.js';

const head = (kvHead: number): HostedHead => ({ kvHead, replica: 0, share: 1, prefillOwner: true });

describe('ownedHeadObservations', () => {
  it("hands each owned head its group's rows of the kernel's accumulated scores and window sums", () => {
    const group = 2;
    const count = 3;
    // [localQueryHead][T] each, with distinct values per element
    const accumulated = Float32Array.from({ length: 3 * group * count }, (_, i) => 100 + i);
    const windowSums = Float32Array.from({ length: 3 * group * count }, (_, i) => i);
    const result = ownedHeadObservations({
      heads: [head(4), head(7), head(9)],
      owned: [true, false, true],
      groupSize: group,
      headDim: 8,
      tokenCount: count,
      needs: { windowRows: 1, accumulated: true, keyNorms: false },
      windowSums,
      accumulated,
    });
    expect(result.map((entry) => entry.kvHead)).toEqual([4, 9]);
    expect(Array.from(result[0]!.accumulated!)).toEqual([100, 101, 102, 103, 104, 105]);
    expect(Array.from(result[1]!.accumulated!)).toEqual([112, 113, 114, 115, 116, 117]);
    expect(Array.from(result[0]!.windowSums!)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Array.from(result[1]!.windowSums!)).toEqual([12, 13, 14, 15, 16, 17]);
  });

  it('gives no accumulated scores or window sums when the policy reads none', () => {
    const [entry] = ownedHeadObservations({
      heads: [head(0)],
      owned: [true],
      groupSize: 1,
      headDim: 8,
      tokenCount: 2,
      needs: { windowRows: 0, accumulated: false, keyNorms: false },
      accumulated: new Float32Array(2),
      windowSums: new Float32Array(2),
    });
    expect(entry!.accumulated).toBeUndefined();
    expect(entry!.windowSums).toBeUndefined();
  });
});
