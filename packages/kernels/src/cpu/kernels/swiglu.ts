import type { CpuKernel } from '../cpu-kernel.js';

/** `swiglu` on the CPU: `silu(gate) * up`. */
export const swigluKernel: CpuKernel<'swiglu'> = {
  name: 'swiglu',
  run(args, context) {
    const gate = context.f32(args.gate);
    const up = context.f32(args.up);
    const output = context.f32(args.output);
    for (let i = 0; i < args.elementCount; i++) {
      const g = gate[i]!;
      output[i] = (g / (1 + Math.exp(-g))) * up[i]!;
    }
  },
};
