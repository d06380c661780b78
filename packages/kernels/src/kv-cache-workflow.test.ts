import { describe, expect, it } from 'vitest';
import { createCpuBackend } from './cpu/cpu-backend.js';
import { KvBlockAllocator } from './kv-block-allocator.js';
import { kvBlockElementCount, kvBlocksFor } from './kv-layout.js';
import { createRandom } from './testing/random.js';
import { referenceAttend } from './testing/reference/attention.js';

/**
 * The layout of docs/kv-cache.md end to end on the CPU backend: write a prompt, compact it by kept
 * indices into fresh blocks (freeing the old ones), append a decode token, and attend.
 */
describe('paged KV cache workflow', () => {
  it('compacts, frees, reuses blocks and attends over exactly the kept tokens plus the new one', async () => {
    const random = createRandom(20261126);
    const backend = createCpuBackend();
    const headDim = 8;
    const blockSize = 4;
    const promptLength = 11;
    const allocator = new KvBlockAllocator({ blockCount: 8, blockSize, headDim, dtype: 'f32' });
    const pool = backend.createBuffer({ dtype: 'f32', elementCount: 8 * kvBlockElementCount(blockSize, headDim) });
    const blockTable = backend.createBuffer({ dtype: 'i32', elementCount: 16 });
    const poolArgs = { pool, blockTable, blockCount: 8, blockSize, headDim, blockTableLength: 16 };

    // prompt K/V (one kv head), written in full at table offset 0
    const keys = random.floats(promptLength * headDim);
    const values = random.floats(promptLength * headDim);
    const key = backend.createBuffer({ dtype: 'f32', elementCount: promptLength * headDim });
    const value = backend.createBuffer({ dtype: 'f32', elementCount: promptLength * headDim });
    backend.upload(key, keys);
    backend.upload(value, values);
    const promptBlocks = allocator.allocate(kvBlocksFor(promptLength, blockSize));
    backend.upload(blockTable, Int32Array.from(promptBlocks), 0);
    const entries = backend.createBuffer({ dtype: 'i32', elementCount: promptLength * 4 });
    backend.upload(
      entries,
      Int32Array.from({ length: promptLength * 4 }, (_, i) => [Math.floor(i / 4), 0, Math.floor(i / 4), 0][i % 4]!),
    );
    backend.run('kv-append', {
      ...poolArgs,
      key,
      value,
      entries,
      rowCount: promptLength,
      kvHeadCount: 1,
      entryCount: promptLength,
    });
    expect(allocator.usedBlockCount).toBe(3);

    // compress: keep 5 tokens (sink + recent), compact into fresh blocks at table offset 8, free the old
    const kept = [0, 1, 8, 9, 10];
    const keptBlocks = allocator.allocate(kvBlocksFor(kept.length, blockSize));
    backend.upload(blockTable, Int32Array.from(keptBlocks), 8);
    const keptIndices = backend.createBuffer({ dtype: 'i32', elementCount: kept.length });
    backend.upload(keptIndices, Int32Array.from(kept));
    const sequences = backend.createBuffer({ dtype: 'i32', elementCount: 4 });
    backend.upload(sequences, Int32Array.from([0, kept.length, 0, 8]));
    backend.run('kv-compact', { ...poolArgs, keptIndices, sequences, sequenceCount: 1, keptIndexCount: kept.length });
    allocator.free(promptBlocks);
    expect(allocator.usedBlockCount).toBe(2);
    expect(allocator.usedBytes).toBe(2 * allocator.blockBytes);

    // a joining request reuses the freed blocks
    const reused = allocator.allocate(3);
    expect(reused.sort()).toEqual([...promptBlocks].sort());
    allocator.free(reused);

    // decode: append token 5 of the compacted sequence (its second block has room), then attend
    const newKey = random.floats(headDim);
    const newValue = random.floats(headDim);
    backend.upload(key, newKey);
    backend.upload(value, newValue);
    backend.upload(entries, Int32Array.from([0, 0, kept.length, 8]));
    backend.run('kv-append', { ...poolArgs, key, value, entries, rowCount: 1, kvHeadCount: 1, entryCount: 1 });
    const query = random.floats(2 * headDim);
    const queryBuffer = backend.createBuffer({ dtype: 'f32', elementCount: 2 * headDim });
    const output = backend.createBuffer({ dtype: 'f32', elementCount: 2 * headDim });
    backend.upload(queryBuffer, query);
    const pairs = backend.createBuffer({ dtype: 'i32', elementCount: 4 });
    backend.upload(pairs, Int32Array.from([0, 0, kept.length + 1, 8]));
    const scale = 1 / Math.sqrt(headDim);
    backend.run('ragged-decode-attention', {
      ...poolArgs,
      query: queryBuffer,
      output,
      pairs,
      rowCount: 1,
      kvHeadCount: 1,
      groupSize: 2,
      pairCount: 1,
      scale,
    });
    const denseKeys = [
      ...kept.map((t) => Array.from(keys.subarray(t * headDim, (t + 1) * headDim))),
      Array.from(newKey),
    ].flat();
    const denseValues = [
      ...kept.map((t) => Array.from(values.subarray(t * headDim, (t + 1) * headDim))),
      Array.from(newValue),
    ].flat();
    const expected = new Float64Array(2 * headDim);
    for (let g = 0; g < 2; g++) {
      const at = (t: number) => t * headDim;
      referenceAttend(
        query,
        g * headDim,
        denseKeys,
        denseValues,
        at,
        at,
        kept.length + 1,
        headDim,
        scale,
        expected,
        g * headDim,
      );
    }
    const actual = await backend.download(output);
    for (const [i, x] of actual.entries()) expect(x).toBeCloseTo(expected[i]!, 6);
    backend.dispose();
  });
});
