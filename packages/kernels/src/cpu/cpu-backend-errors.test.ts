import { BackendError, CapacityError, UnsupportedError, ValidationError } from '@fairkv/core';
import { skipReason } from '@fairkv/kernels/testing';
import { describe, expect, it } from 'vitest';
import { CONFORMANCE_CASES } from '../testing/cases/index.js';
import { createCpuBackend } from './cpu-backend.js';

describe('cpu backend specifics', () => {
  it('throws a CapacityError past its memory limit, naming the shortfall', () => {
    const backend = createCpuBackend({ memoryLimitBytes: 1000 });
    backend.createBuffer({ dtype: 'f32', elementCount: 200 });
    expect(() => backend.createBuffer({ dtype: 'f16', elementCount: 150 })).toThrow(CapacityError);
    try {
      backend.createBuffer({ dtype: 'f16', elementCount: 150 });
    } catch (error) {
      expect((error as CapacityError).shortfallBytes).toBe(100);
    }
  });

  it('registers only the kernels asked for, and the conformance suite skips exactly those', () => {
    const backend = createCpuBackend({ kernels: ['matmul', 'argmax'] });
    expect(backend.capabilities.kernels).toEqual(['matmul', 'argmax']);
    const buffer = backend.createBuffer({ dtype: 'f32', elementCount: 4 });
    expect(() => backend.run('swiglu', { gate: buffer, up: buffer, output: buffer, elementCount: 4 })).toThrow(
      UnsupportedError,
    );
    const running = CONFORMANCE_CASES.filter((c) => skipReason(c, backend.capabilities) === undefined);
    expect(new Set(running.map((c) => c.kernel))).toEqual(new Set(['matmul', 'argmax']));
    const restricted = { ...backend.capabilities, storageDTypes: ['f32'] as const, headDims: [64] };
    const decode = CONFORMANCE_CASES.filter((c) => c.kernel === 'ragged-decode-attention');
    expect(decode.map((c) => skipReason(c, { ...restricted, kernels: ['ragged-decode-attention'] }))).toContain(
      'dtype bf16 not declared',
    );
    expect(decode.map((c) => skipReason(c, { ...restricted, kernels: ['ragged-decode-attention'] }))).toContain(
      'head dim 8 not declared',
    );
  });

  it('throws BackendErrors for out-of-range index contents', () => {
    const backend = createCpuBackend();
    const table = backend.createBuffer({ dtype: 'f32', elementCount: 8 });
    const tokens = backend.createBuffer({ dtype: 'i32', elementCount: 1 });
    const output = backend.createBuffer({ dtype: 'f32', elementCount: 4 });
    backend.upload(tokens, Int32Array.from([2]));
    expect(() =>
      backend.run('embedding-gather', { table, tokens, output, rowCount: 1, vocabSize: 2, hiddenSize: 4 }),
    ).toThrow(/tokens\[0\] = 2 is outside \[0, 2\)/);
    const pool = backend.createBuffer({ dtype: 'f32', elementCount: 2 * 2 * 2 * 4 });
    const blockTable = backend.createBuffer({ dtype: 'i32', elementCount: 2 });
    const pairs = backend.createBuffer({ dtype: 'i32', elementCount: 4 });
    backend.upload(blockTable, Int32Array.from([0, 5]));
    backend.upload(pairs, Int32Array.from([0, 0, 3, 0]));
    const decode = {
      pool,
      blockTable,
      blockCount: 2,
      blockSize: 2,
      headDim: 4,
      blockTableLength: 2,
      query: backend.createBuffer({ dtype: 'f32', elementCount: 4 }),
      output,
      pairs,
      rowCount: 1,
      kvHeadCount: 1,
      groupSize: 1,
      pairCount: 1,
      scale: 0.5,
    };
    expect(() => backend.run('ragged-decode-attention', decode)).toThrow(BackendError);
    expect(() => backend.run('ragged-decode-attention', decode)).toThrow(/blockTable\[1\] = 5/);
  });

  it('rejects compaction into its own source blocks', () => {
    const backend = createCpuBackend();
    const pool = backend.createBuffer({ dtype: 'f32', elementCount: 2 * 2 * 1 * 4 });
    const blockTable = backend.createBuffer({ dtype: 'i32', elementCount: 1 });
    const keptIndices = backend.createBuffer({ dtype: 'i32', elementCount: 1 });
    const sequences = backend.createBuffer({ dtype: 'i32', elementCount: 4 });
    backend.upload(blockTable, Int32Array.from([1]));
    backend.upload(keptIndices, Int32Array.from([0]));
    backend.upload(sequences, Int32Array.from([0, 1, 0, 0]));
    expect(() =>
      backend.run('kv-compact', {
        pool,
        blockTable,
        blockCount: 2,
        blockSize: 1,
        headDim: 4,
        blockTableLength: 1,
        keptIndices,
        sequences,
        sequenceCount: 1,
        keptIndexCount: 1,
      }),
    ).toThrow(/out of place/);
  });

  it('rejects an output that is also an input, except documented in-place uses', () => {
    const backend = createCpuBackend();
    const a = backend.createBuffer({ dtype: 'f32', elementCount: 16 });
    const b = backend.createBuffer({ dtype: 'f32', elementCount: 16 });
    expect(() =>
      backend.run('matmul', { input: a, weight: b, output: a, rowCount: 2, innerSize: 2, outerSize: 2 }),
    ).toThrow(/\$\.output: must not be the same buffer as input/);
    expect(() => backend.run('swiglu', { gate: a, up: b, output: a, elementCount: 16 })).not.toThrow();
    expect(() => backend.run('add-in-place', { target: a, addend: a, elementCount: 16 })).not.toThrow();
  });

  it('validates cross-field shapes with every issue listed', () => {
    const backend = createCpuBackend();
    const buffer = backend.createBuffer({ dtype: 'f32', elementCount: 1000 });
    try {
      backend.run('prefill-attention', {
        query: buffer,
        key: buffer,
        value: buffer,
        output: backend.createBuffer({ dtype: 'f32', elementCount: 1000 }),
        tokenCount: 3,
        queryHeadCount: 3,
        kvHeadCount: 2,
        headDim: 8,
        windowSize: 4,
        scale: 0,
      });
      throw new Error('expected a ValidationError');
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).issues.map((issue) => issue.path).sort()).toEqual([
        '$.kvHeadCount',
        '$.scale',
        '$.windowScores',
        '$.windowSize',
      ]);
    }
  });

  it('names an accumulatedScores buffer that is too small, or the same buffer as an input', () => {
    const backend = createCpuBackend();
    const input = backend.createBuffer({ dtype: 'f32', elementCount: 4 * 2 * 8 });
    const args = {
      query: input,
      key: backend.createBuffer({ dtype: 'f32', elementCount: 4 * 8 }),
      value: backend.createBuffer({ dtype: 'f32', elementCount: 4 * 8 }),
      output: backend.createBuffer({ dtype: 'f32', elementCount: 4 * 2 * 8 }),
      tokenCount: 4,
      queryHeadCount: 2,
      kvHeadCount: 1,
      headDim: 8,
      windowSize: 0,
      scale: 0.35,
    };
    expect(() =>
      backend.run('prefill-attention', {
        ...args,
        accumulatedScores: backend.createBuffer({ dtype: 'f32', elementCount: 7 }),
      }),
    ).toThrow(/\$\.accumulatedScores: .*8/);
    expect(() => backend.run('prefill-attention', { ...args, accumulatedScores: input })).toThrow(
      /\$\.accumulatedScores: must not be the same buffer as query/,
    );
    expect(() =>
      backend.run('prefill-attention', {
        ...args,
        accumulatedScores: backend.createBuffer({ dtype: 'f32', elementCount: 8 }),
      }),
    ).not.toThrow();
  });

  it('takes window column sums in place of the window rows, and names them without a window', () => {
    const backend = createCpuBackend();
    const args = {
      query: backend.createBuffer({ dtype: 'f32', elementCount: 4 * 2 * 8 }),
      key: backend.createBuffer({ dtype: 'f32', elementCount: 4 * 8 }),
      value: backend.createBuffer({ dtype: 'f32', elementCount: 4 * 8 }),
      output: backend.createBuffer({ dtype: 'f32', elementCount: 4 * 2 * 8 }),
      windowScoreSums: backend.createBuffer({ dtype: 'f32', elementCount: 2 * 4 }),
      tokenCount: 4,
      queryHeadCount: 2,
      kvHeadCount: 1,
      headDim: 8,
      scale: 0.35,
    };
    expect(() => backend.run('prefill-attention', { ...args, windowSize: 2 })).not.toThrow();
    expect(() => backend.run('prefill-attention', { ...args, windowSize: 0 })).toThrow(
      /\$\.windowScoreSums: needs a window: windowSize is 0/,
    );
    for (const kvRounding of ['bf16', 'f16'] as const) {
      expect(() => backend.run('prefill-attention', { ...args, windowSize: 2, kvRounding })).not.toThrow();
    }
    expect(() =>
      backend.run('prefill-attention', { ...args, windowSize: 2, kvRounding: 'f8' as unknown as 'bf16' }),
    ).toThrow(/\$\.kvRounding: expected 'bf16' or 'f16', got "f8"/);
    for (const productRounding of ['bf16', 'f16'] as const) {
      expect(() => backend.run('prefill-attention', { ...args, windowSize: 2, productRounding })).not.toThrow();
      expect(() =>
        backend.run('prefill-attention', { ...args, windowSize: 2, productRounding, kvRounding: productRounding }),
      ).not.toThrow();
    }
    expect(() =>
      backend.run('prefill-attention', { ...args, windowSize: 2, productRounding: 'tf32' as unknown as 'bf16' }),
    ).toThrow(/\$\.productRounding: expected 'bf16' or 'f16', got "tf32"/);
    expect(() =>
      backend.run('prefill-attention', { ...args, windowSize: 2, kvRounding: 'bf16', productRounding: 'f16' }),
    ).toThrow(/\$\.productRounding: expected the kvRounding type "bf16" \(products round K and V too\), got "f16"/);
  });
});
