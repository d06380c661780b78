import { BackendError } from '@fairkv/core';
import type { CpuKernel } from '../cpu-kernel.js';
import { storedRow } from '../stored-array.js';

/** `embedding-gather` on the CPU: copies (and widens) one table row per token. */
export const embeddingGatherKernel: CpuKernel<'embedding-gather'> = {
  name: 'embedding-gather',
  run(args, context) {
    const { rowCount, vocabSize, hiddenSize } = args;
    const table = context.stored(args.table);
    const tokens = context.i32(args.tokens);
    const output = context.f32(args.output);
    const scratch = context.scratchF32(0, hiddenSize);
    for (let row = 0; row < rowCount; row++) {
      const token = tokens[row]!;
      if (token < 0 || token >= vocabSize) {
        throw new BackendError(`embedding-gather: tokens[${row}] = ${token} is outside [0, ${vocabSize})`);
      }
      output.set(storedRow(table, token * hiddenSize, hiddenSize, scratch).subarray(0, hiddenSize), row * hiddenSize);
    }
  },
};
