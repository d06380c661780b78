import { BackendError } from '@fairkv/core';
import type { KvPoolArgs } from '../kernel-args.js';

/**
 * The pool block holding token `token` of the sequence whose block list starts at `tableOffset`,
 * with the table index and block id checked (the CPU backend's content validation). Shared by the
 * KV kernels; named after what it does, not a kernel itself.
 */
export function resolveBlock(
  kernel: string,
  blockTable: Int32Array,
  args: KvPoolArgs,
  tableOffset: number,
  token: number,
  where: string,
): number {
  const tableIndex = tableOffset + Math.floor(token / args.blockSize);
  if (tableOffset < 0 || tableIndex >= args.blockTableLength) {
    throw new BackendError(
      `${kernel}: ${where}: token ${token} of the sequence at table offset ${tableOffset} needs block table index ${tableIndex}, outside [0, ${args.blockTableLength})`,
    );
  }
  const block = blockTable[tableIndex]!;
  if (block < 0 || block >= args.blockCount) {
    throw new BackendError(
      `${kernel}: ${where}: blockTable[${tableIndex}] = ${block} is outside the pool's blocks [0, ${args.blockCount})`,
    );
  }
  return block;
}
