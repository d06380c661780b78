import type { CpuKernel } from '../cpu-kernel.js';

/** Index of the largest of `length` values from `offset` (lowest index among ties). */
export function argmaxOf(values: Float32Array, offset: number, length: number): number {
  let best = 0;
  let bestValue = values[offset]!;
  for (let i = 1; i < length; i++) {
    const value = values[offset + i]!;
    if (value > bestValue) {
      bestValue = value;
      best = i;
    }
  }
  return best;
}

/** `argmax` on the CPU: greedy decoding. */
export const argmaxKernel: CpuKernel<'argmax'> = {
  name: 'argmax',
  run(args, context) {
    const logits = context.f32(args.logits);
    const output = context.i32(args.output);
    for (let row = 0; row < args.rowCount; row++) output[row] = argmaxOf(logits, row * args.vocabSize, args.vocabSize);
  },
};
