import { bytesPerElement, CapacityError, type DType, ValidationError } from '@fairkv/core';
import { kvBlockElementCount } from './kv-layout.js';

/** Options of {@link KvBlockAllocator}. */
export interface KvBlockAllocatorOptions {
  /** Blocks in the pool. */
  blockCount: number;
  /** Tokens per block. */
  blockSize: number;
  headDim: number;
  /** Pool dtype. */
  dtype: DType;
  /** Device index, named in a `CapacityError`. */
  device?: number;
}

/**
 * Host-side free list of a paged KV pool (docs/kv-cache.md): hands out block ids, takes them back,
 * and counts exactly how many bytes of the pool are in use. Freed blocks are reused first (LIFO), so
 * compaction really returns memory to the next allocation. Backend-independent: the device pool is
 * one buffer; this decides which of its blocks belong to which sequence.
 */
export class KvBlockAllocator {
  /** Blocks in the pool. */
  readonly blockCount: number;
  /** Tokens per block. */
  readonly blockSize: number;
  /** Bytes of one block (K and V of `blockSize` tokens). */
  readonly blockBytes: number;
  readonly #device: number | undefined;
  readonly #freeStack: Int32Array;
  readonly #inUse: Uint8Array;
  #freeCount: number;

  constructor(options: KvBlockAllocatorOptions) {
    for (const field of ['blockCount', 'blockSize', 'headDim'] as const) {
      const value = options[field];
      if (!Number.isInteger(value) || value <= 0) {
        throw new ValidationError(`${field}: expected a positive integer, got ${value}`, [
          { path: `$.${field}`, message: 'expected a positive integer' },
        ]);
      }
    }
    this.blockCount = options.blockCount;
    this.blockSize = options.blockSize;
    this.blockBytes = kvBlockElementCount(options.blockSize, options.headDim) * bytesPerElement(options.dtype);
    this.#device = options.device;
    this.#freeStack = new Int32Array(options.blockCount);
    // lowest ids on top of the stack, so a fresh pool hands out 0, 1, 2, ...
    for (let i = 0; i < options.blockCount; i++) this.#freeStack[i] = options.blockCount - 1 - i;
    this.#inUse = new Uint8Array(options.blockCount);
    this.#freeCount = options.blockCount;
  }

  /** Blocks not in use. */
  get freeBlockCount(): number {
    return this.#freeCount;
  }

  /** Blocks in use. */
  get usedBlockCount(): number {
    return this.blockCount - this.#freeCount;
  }

  /** Bytes of the pool in use: `usedBlockCount * blockBytes` (tail waste of last blocks included). */
  get usedBytes(): number {
    return this.usedBlockCount * this.blockBytes;
  }

  /** Bytes of the whole pool. */
  get capacityBytes(): number {
    return this.blockCount * this.blockBytes;
  }

  /** Whether `blockId` is currently allocated. */
  isInUse(blockId: number): boolean {
    return this.#inUse[blockId] === 1;
  }

  /**
   * Takes `count` blocks. All or nothing: throws a `CapacityError` naming the device and the
   * shortfall in bytes when fewer are free.
   */
  allocate(count: number): number[] {
    if (!Number.isInteger(count) || count < 0) {
      throw new ValidationError(`count: expected a non-negative integer, got ${count}`, [
        { path: '$.count', message: 'expected a non-negative integer' },
      ]);
    }
    if (count > this.#freeCount) {
      const shortfallBytes = (count - this.#freeCount) * this.blockBytes;
      throw new CapacityError(
        `KV pool${this.#device === undefined ? '' : ` of device ${this.#device}`} is full: ${count} blocks requested, ${this.#freeCount} of ${this.blockCount} free (short by ${shortfallBytes} bytes)`,
        { ...(this.#device === undefined ? {} : { device: this.#device }), shortfallBytes },
      );
    }
    const blocks: number[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const block = this.#freeStack[--this.#freeCount]!;
      this.#inUse[block] = 1;
      blocks[i] = block;
    }
    return blocks;
  }

  /**
   * Returns blocks to the pool. All or nothing: throws a `ValidationError` (and frees none) for an
   * unknown, already free or repeated block.
   */
  free(blocks: readonly number[]): void {
    for (let index = 0; index < blocks.length; index++) {
      const block = blocks[index]!;
      if (!Number.isInteger(block) || block < 0 || block >= this.blockCount || this.#inUse[block] !== 1) {
        for (let undo = 0; undo < index; undo++) this.#inUse[blocks[undo]!] = 1;
        throw new ValidationError(`blocks[${index}]: block ${block} is not an allocated block of this pool`, [
          {
            path: `$.blocks[${index}]`,
            message: `expected an allocated block id in [0, ${this.blockCount}), listed once`,
          },
        ]);
      }
      this.#inUse[block] = 2;
    }
    for (const block of blocks) {
      this.#inUse[block] = 0;
      this.#freeStack[this.#freeCount++] = block;
    }
  }
}
