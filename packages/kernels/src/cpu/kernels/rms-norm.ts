import type { CpuKernel } from '../cpu-kernel.js';
import { storedRow } from '../stored-array.js';

/** `rms-norm` on the CPU: the optional residual add, sum of squares in f64, then one scaled pass. */
export const rmsNormKernel: CpuKernel<'rms-norm'> = {
  name: 'rms-norm',
  run(args, context) {
    const { rowCount, size, epsilon } = args;
    const input = context.f32(args.input);
    const output = context.f32(args.output);
    const addend = args.addend ? context.f32(args.addend) : undefined;
    const weight = storedRow(context.stored(args.weight), 0, size, context.scratchF32(0, size));
    for (let row = 0; row < rowCount; row++) {
      const base = row * size;
      // the fused residual add: the f32 sum goes back into input (a Float32Array rounds it)
      if (addend) for (let i = 0; i < size; i++) input[base + i] = input[base + i]! + addend[base + i]!;
      let sumOfSquares = 0;
      for (let i = 0; i < size; i++) {
        const x = input[base + i]!;
        sumOfSquares += x * x;
      }
      const inverse = 1 / Math.sqrt(sumOfSquares / size + epsilon);
      for (let i = 0; i < size; i++) output[base + i] = input[base + i]! * inverse * weight[i]!;
    }
  },
};
