import { BackendError } from '@fairkv/core';
import { KV_COMPACT_SEQUENCE_FIELDS } from '../../kv-layout.js';
import type { CpuKernel } from '../cpu-kernel.js';
import { resolveBlock } from '../kv-block-lookup.js';

/**
 * `kv-compact` on the CPU: gathers the kept tokens of each source sequence into its destination
 * blocks, bit-exact. Checks that no destination block is also a source block of the call.
 */
export const kvCompactKernel: CpuKernel<'kv-compact'> = {
  name: 'kv-compact',
  run(args, context) {
    const { headDim, blockSize, blockCount, sequenceCount, keptIndexCount } = args;
    const sequences = context.i32(args.sequences);
    const kept = context.i32(args.keptIndices);
    const blockTable = context.i32(args.blockTable);
    const pool = context.stored(args.pool).data;
    // 1 = read by this call, 2 = written by this call: a block may not be both
    const role = new Uint8Array(blockCount);
    const moves: number[] = [];
    for (let sequence = 0; sequence < sequenceCount; sequence++) {
      const base = sequence * KV_COMPACT_SEQUENCE_FIELDS;
      const keptOffset = sequences[base]!;
      const keptCount = sequences[base + 1]!;
      const sourceTableOffset = sequences[base + 2]!;
      const destinationTableOffset = sequences[base + 3]!;
      if (keptOffset < 0 || keptCount < 0 || keptOffset + keptCount > keptIndexCount) {
        throw new BackendError(
          `kv-compact: sequences[${sequence}]: kept range [${keptOffset}, ${keptOffset + keptCount}) is outside keptIndices [0, ${keptIndexCount})`,
        );
      }
      for (let j = 0; j < keptCount; j++) {
        const index = kept[keptOffset + j]!;
        const where = `sequences[${sequence}] kept ${j}`;
        if (index < 0)
          throw new BackendError(`kv-compact: ${where}: keptIndices[${keptOffset + j}] = ${index} is negative`);
        const source = resolveBlock('kv-compact', blockTable, args, sourceTableOffset, index, where);
        const destination = resolveBlock('kv-compact', blockTable, args, destinationTableOffset, j, where);
        role[source]! |= 1;
        role[destination]! |= 2;
        moves.push(source, index % blockSize, destination, j % blockSize);
      }
    }
    for (let block = 0; block < blockCount; block++) {
      if (role[block] === 3) {
        throw new BackendError(
          `kv-compact: block ${block} is both a source and a destination; compaction is out of place`,
        );
      }
    }
    const planeSize = blockSize * headDim;
    for (let m = 0; m < moves.length; m += 4) {
      const from = (moves[m]! * 2 * blockSize + moves[m + 1]!) * headDim;
      const to = (moves[m + 2]! * 2 * blockSize + moves[m + 3]!) * headDim;
      pool.copyWithin(to, from, from + headDim);
      pool.copyWithin(to + planeSize, from + planeSize, from + planeSize + headDim);
    }
  },
};
