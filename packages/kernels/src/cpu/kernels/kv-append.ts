import { BackendError } from '@fairkv/core';
import { KV_APPEND_ENTRY_FIELDS } from '../../kv-layout.js';
import type { CpuKernel } from '../cpu-kernel.js';
import { resolveBlock } from '../kv-block-lookup.js';
import { writeStored } from '../stored-array.js';

/** `kv-append` on the CPU: writes each entry's K and V row into its sequence's block slot. */
export const kvAppendKernel: CpuKernel<'kv-append'> = {
  name: 'kv-append',
  run(args, context) {
    const { rowCount, kvHeadCount, headDim, blockSize, entryCount } = args;
    const key = context.f32(args.key);
    const value = context.f32(args.value);
    const entries = context.i32(args.entries);
    const blockTable = context.i32(args.blockTable);
    const pool = context.stored(args.pool);
    for (let entry = 0; entry < entryCount; entry++) {
      const base = entry * KV_APPEND_ENTRY_FIELDS;
      const sourceRow = entries[base]!;
      const kvHead = entries[base + 1]!;
      const position = entries[base + 2]!;
      const tableOffset = entries[base + 3]!;
      if (sourceRow < 0 || sourceRow >= rowCount || kvHead < 0 || kvHead >= kvHeadCount || position < 0) {
        throw new BackendError(
          `kv-append: entries[${entry}] = [${sourceRow}, ${kvHead}, ${position}, ${tableOffset}] needs sourceRow in [0, ${rowCount}), kvHead in [0, ${kvHeadCount}) and position >= 0`,
        );
      }
      const block = resolveBlock('kv-append', blockTable, args, tableOffset, position, `entries[${entry}]`);
      const slot = position % blockSize;
      const sourceBase = (sourceRow * kvHeadCount + kvHead) * headDim;
      const keyOffset = (block * 2 * blockSize + slot) * headDim;
      writeStored(pool, keyOffset, key, sourceBase, headDim);
      writeStored(pool, keyOffset + blockSize * headDim, value, sourceBase, headDim);
    }
  },
};
