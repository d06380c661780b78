import { BackendError } from '@fairkv/core';
import type { CpuKernel } from '../cpu-kernel.js';

/** `rope` on the CPU: rotates pairs in place with the cos/sin table row of each position. */
export const ropeKernel: CpuKernel<'rope'> = {
  name: 'rope',
  run(args, context) {
    const { rowCount, headCount, headDim, tablePositionCount, layout } = args;
    const data = context.f32(args.data);
    const positions = context.i32(args.positions);
    const table = context.f32(args.table);
    const half = headDim / 2;
    // adjacent: pair i is (2i, 2i + 1); half-split: pair i is (i, i + half)
    const firstStride = layout === 'adjacent' ? 2 : 1;
    const secondOffset = layout === 'adjacent' ? 1 : half;
    for (let row = 0; row < rowCount; row++) {
      const position = positions[row]!;
      if (position < 0 || position >= tablePositionCount) {
        throw new BackendError(`rope: positions[${row}] = ${position} is outside [0, ${tablePositionCount})`);
      }
      const cosBase = position * headDim;
      const sinBase = cosBase + half;
      for (let head = 0; head < headCount; head++) {
        const base = (row * headCount + head) * headDim;
        for (let i = 0; i < half; i++) {
          const first = base + i * firstStride;
          const second = first + secondOffset;
          const x = data[first]!;
          const y = data[second]!;
          const c = table[cosBase + i]!;
          const s = table[sinBase + i]!;
          data[first] = x * c - y * s;
          data[second] = x * s + y * c;
        }
      }
    }
  },
};
