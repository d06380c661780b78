import type { DeviceBuffer } from '@fairkv/kernels';
import { describe, expect, it } from 'vitest';
import { createRankCommunicators } from './nccl-rank-communicators.js';

const fakeBuffer = (label: string): DeviceBuffer<'f32'> => ({
  dtype: 'f32',
  elementCount: 8,
  byteLength: 32,
  label,
  disposed: false,
});

describe('rank communicators over one group collective', () => {
  it('sums host arrays in rank order once every rank arrived, identically on every rank', async () => {
    const ranks = createRankCommunicators(3, () => {
      throw new Error('not used');
    });
    const data = [Float32Array.of(0.1, 1e8), Float32Array.of(0.2, 1), Float32Array.of(0.3, -1e8)];
    await Promise.all(ranks.map((rank, i) => rank.allReduceSum(data[i]!)));
    const expected = new Float32Array(2);
    for (const array of [Float32Array.of(0.1, 1e8), Float32Array.of(0.2, 1), Float32Array.of(0.3, -1e8)]) {
      for (let i = 0; i < 2; i++) expected[i] = expected[i]! + array[i]!;
    }
    for (const array of data) expect(Array.from(array)).toEqual(Array.from(expected));
  });

  it('issues one group all-reduce with every rank buffer in rank order, only after the last rank', async () => {
    const calls: { labels: string[]; count: number }[] = [];
    const ranks = createRankCommunicators(2, (buffers, count) =>
      calls.push({ labels: buffers.map((b) => b.label), count }),
    );
    const second = ranks[1]!.allReduceDeviceSum(fakeBuffer('b'), 5);
    expect(calls).toEqual([]);
    await Promise.all([ranks[0]!.allReduceDeviceSum(fakeBuffer('a'), 5), second]);
    expect(calls).toEqual([{ labels: ['a', 'b'], count: 5 }]);
  });

  it('rejects mismatched counts, double entry and use after dispose', async () => {
    let disposed = 0;
    const ranks = createRankCommunicators(
      2,
      () => {},
      () => disposed++,
    );
    const pending = ranks[0]!.allReduceDeviceSum(fakeBuffer('a'), 4);
    await expect(ranks[1]!.allReduceDeviceSum(fakeBuffer('b'), 5)).rejects.toThrow(/expected|others 4/);
    await expect(ranks[0]!.allReduceDeviceSum(fakeBuffer('a'), 4)).rejects.toThrow(/twice/);
    ranks[0]!.dispose();
    ranks[1]!.dispose();
    await expect(pending).rejects.toThrow(/disposed/);
    expect(disposed).toBe(1);
    await expect(ranks[1]!.allReduceSum(new Float32Array(1))).rejects.toThrow(/disposed/);
  });
});
