import type { CpuKernel } from '../cpu-kernel.js';

/** `add-in-place` on the CPU: the residual add `target += addend`. */
export const addInPlaceKernel: CpuKernel<'add-in-place'> = {
  name: 'add-in-place',
  run(args, context) {
    const target = context.f32(args.target);
    const addend = context.f32(args.addend);
    for (let i = 0; i < args.elementCount; i++) target[i] = target[i]! + addend[i]!;
  },
};
