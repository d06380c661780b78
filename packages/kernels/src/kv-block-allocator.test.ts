import { CapacityError, ValidationError } from '@fairkv/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KvBlockAllocator } from './kv-block-allocator.js';

describe('KvBlockAllocator', () => {
  it('counts bytes exactly and hands out fresh blocks lowest first', () => {
    const allocator = new KvBlockAllocator({ blockCount: 10, blockSize: 16, headDim: 128, dtype: 'bf16' });
    expect(allocator.blockBytes).toBe(2 * 16 * 128 * 2);
    expect(allocator.capacityBytes).toBe(10 * 8192);
    expect(allocator.allocate(3)).toEqual([0, 1, 2]);
    expect(allocator.usedBytes).toBe(3 * 8192);
    expect(allocator.freeBlockCount).toBe(7);
  });

  it('reuses freed blocks first, so compaction really returns memory', () => {
    const allocator = new KvBlockAllocator({ blockCount: 4, blockSize: 4, headDim: 8, dtype: 'f32' });
    const blocks = allocator.allocate(4);
    allocator.free([blocks[1]!, blocks[3]!]);
    expect(allocator.allocate(2).sort()).toEqual([1, 3]);
  });

  it('throws a CapacityError naming the device and the shortfall, allocating nothing', () => {
    const allocator = new KvBlockAllocator({ blockCount: 2, blockSize: 16, headDim: 8, dtype: 'f16', device: 3 });
    allocator.allocate(1);
    const error = (() => {
      try {
        allocator.allocate(3);
      } catch (caught) {
        return caught as CapacityError;
      }
      throw new Error('expected a CapacityError');
    })();
    expect(error).toBeInstanceOf(CapacityError);
    expect(error.device).toBe(3);
    expect(error.shortfallBytes).toBe(2 * allocator.blockBytes);
    expect(error.message).toMatch(/device 3/);
    expect(allocator.freeBlockCount).toBe(1);
  });

  it('rejects double frees and foreign ids without freeing anything', () => {
    const allocator = new KvBlockAllocator({ blockCount: 4, blockSize: 4, headDim: 8, dtype: 'f32' });
    const [a, b] = allocator.allocate(2);
    expect(() => allocator.free([a!, a!])).toThrow(ValidationError);
    expect(() => allocator.free([b!, 9])).toThrow(/blocks\[1\]/);
    expect(allocator.usedBlockCount).toBe(2);
    expect(allocator.isInUse(a!) && allocator.isInUse(b!)).toBe(true);
  });

  it('never hands out a block twice and conserves blocks under any allocate/free sequence', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 6 })), { maxLength: 60 }), (operations) => {
        const allocator = new KvBlockAllocator({ blockCount: 16, blockSize: 4, headDim: 8, dtype: 'f32' });
        const held: number[] = [];
        for (const [allocate, count] of operations) {
          if (allocate) {
            if (count > allocator.freeBlockCount) {
              expect(() => allocator.allocate(count)).toThrow(CapacityError);
              continue;
            }
            const blocks = allocator.allocate(count);
            for (const block of blocks) expect(held).not.toContain(block);
            held.push(...blocks);
          } else {
            allocator.free(held.splice(0, count));
          }
          expect(allocator.usedBlockCount).toBe(held.length);
          expect(allocator.usedBlockCount + allocator.freeBlockCount).toBe(16);
        }
      }),
    );
  });
});
