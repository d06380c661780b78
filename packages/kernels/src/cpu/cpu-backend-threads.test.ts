import { describeBackendConformance } from '@fairkv/kernels/testing';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../backend.js';
import { kvBlockElementCount } from '../kv-layout.js';
import { createRandom } from '../testing/random.js';
import { createCpuBackend } from './cpu-backend.js';
import { matmulRange } from './kernels/matmul.js';
import { attendPairs } from './kernels/ragged-decode-attention.js';

const threaded = () => createCpuBackend({ threads: 2 });
describeBackendConformance(threaded, createCpuBackend().capabilities);

describe('cpu backend with threads', () => {
  const single = createCpuBackend();
  const parallel = threaded();
  afterAll(() => {
    single.dispose();
    parallel.dispose();
  });

  it('ships self-contained functions to workers', () => {
    for (const fn of [matmulRange, attendPairs]) {
      // evaluated with no surrounding scope: any outside reference would throw here or when called
      const isolated = new Function(`return (${fn.toString()});`)() as typeof fn;
      expect(typeof isolated).toBe('function');
    }
    const isolatedMatmul = new Function(`return (${matmulRange.toString()});`)() as typeof matmulRange;
    const output = new Float32Array(2);
    isolatedMatmul(Float32Array.from([1, 2]), Float32Array.from([3, 4, 5, 6]), 0, null, output, 1, 2, 2, 0, 2);
    expect(Array.from(output)).toEqual([11, 17]);
  });

  it('gives bit-identical matmul results to one thread on calls large enough to split', async () => {
    const random = createRandom(7);
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      const [rowCount, innerSize, outerSize] = [9, 1030, 301];
      const input = random.floats(rowCount * innerSize);
      const weight = random.floats(outerSize * innerSize);
      const results = await Promise.all(
        [single, parallel].map((backend: Backend) => {
          const x = backend.createBuffer({ dtype: 'f32', elementCount: input.length });
          const w = backend.createBuffer({ dtype, elementCount: weight.length });
          const y = backend.createBuffer({ dtype: 'f32', elementCount: rowCount * outerSize });
          backend.upload(x, input);
          backend.upload(w, weight);
          backend.run('matmul', { input: x, weight: w, output: y, rowCount, innerSize, outerSize });
          return backend.download(y);
        }),
      );
      expect(Array.from(results[1]!)).toEqual(Array.from(results[0]!));
    }
  });

  it('gives bit-identical decode attention to one thread on calls large enough to split', async () => {
    const random = createRandom(8);
    const [rows, kvHeadCount, groupSize, headDim, blockSize] = [7, 4, 4, 64, 16];
    const lengths = Array.from({ length: rows * kvHeadCount }, (_, i) => (i % 3 === 0 ? 0 : 1 + ((i * 37) % 300)));
    const blocks = lengths.map((length) => Math.ceil(length / blockSize));
    const blockCount = blocks.reduce((a, b) => a + b, 0);
    const pairValues = new Int32Array(lengths.length * 4);
    let offset = 0;
    lengths.forEach((length, pair) => {
      pairValues.set([Math.floor(pair / kvHeadCount), pair % kvHeadCount, length, offset], pair * 4);
      offset += blocks[pair]!;
    });
    const poolValues = random.floats(blockCount * kvBlockElementCount(blockSize, headDim));
    const queryValues = random.floats(rows * kvHeadCount * groupSize * headDim);
    for (const dtype of ['f32', 'bf16'] as const) {
      const results = await Promise.all(
        [single, parallel].map((backend: Backend) => {
          const upload = <D extends 'f32' | 'i32' | 'bf16'>(kind: D, data: Float32Array | Int32Array) => {
            const buffer = backend.createBuffer<D>({ dtype: kind, elementCount: data.length });
            backend.upload(buffer, data);
            return buffer;
          };
          const output = backend.createBuffer({ dtype: 'f32', elementCount: queryValues.length });
          backend.run('ragged-decode-attention', {
            pool: upload(dtype, poolValues),
            blockTable: upload(
              'i32',
              Int32Array.from({ length: blockCount }, (_, i) => blockCount - 1 - i),
            ),
            blockCount,
            blockSize,
            headDim,
            blockTableLength: blockCount,
            query: upload('f32', queryValues),
            output,
            pairs: upload('i32', pairValues),
            rowCount: rows,
            kvHeadCount,
            groupSize,
            pairCount: lengths.length,
            scale: 0.125,
          });
          return backend.download(output);
        }),
      );
      expect(Array.from(results[1]!)).toEqual(Array.from(results[0]!));
    }
  });
});
