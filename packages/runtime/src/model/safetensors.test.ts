import { FormatError, UnsupportedError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { testValues } from '../__fixtures__/small-gguf.js';
import { memoryByteSource } from './byte-source.js';
import { parseSafetensorsHeader, SafetensorsFile } from './safetensors-reader.js';
import { encodeSafetensors } from './safetensors-writer.js';

/** A safetensors file with a hand-written JSON header. */
function withHeader(header: unknown, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const bytes = new Uint8Array(8 + json.length + dataBytes);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  return bytes;
}

function errorOf(bytes: Uint8Array): FormatError {
  try {
    parseSafetensorsHeader(memoryByteSource(bytes, 'model.safetensors'));
  } catch (error) {
    if (error instanceof FormatError) return error;
    throw error;
  }
  throw new Error('expected a FormatError');
}

describe('safetensors', () => {
  it('round-trips F32, F16 and BF16 tensors and the metadata', async () => {
    const values = testValues(24);
    const bytes = encodeSafetensors(
      [
        { name: 'a', shape: [4, 6], dtype: 'F32', data: values },
        { name: 'b', shape: [24], dtype: 'F16', data: values },
        { name: 'c', shape: [2, 3, 4], dtype: 'BF16', data: values },
      ],
      { format: 'pt' },
    );
    const header = new DataView(bytes.buffer).getBigUint64(0, true);
    expect(Number(header) % 8).toBe(0);
    const file = SafetensorsFile.fromSource(memoryByteSource(bytes));
    expect(file.header.metadata).toEqual({ format: 'pt' });
    expect(await file.tensor('a')!.read()).toEqual(values);
    const half = await file.tensor('b')!.read();
    const brain = await file.tensor('c')!.read();
    for (let index = 0; index < 24; index++) {
      expect(Math.abs(half[index]! - values[index]!)).toBeLessThanOrEqual(2 ** -10);
      expect(Math.abs(brain[index]! - values[index]!)).toBeLessThanOrEqual(2 ** -7);
    }
    expect(file.tensor('c')!.shape).toEqual([2, 3, 4]);
    expect(await file.tensor('a')!.readRows(2, 2)).toEqual(values.subarray(12, 24));
  });

  it('rejects a header length beyond the file or the 100 MB limit', () => {
    const bytes = withHeader({}, 0);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, 1000n, true);
    expect(errorOf(bytes)).toMatchObject({ file: 'model.safetensors', field: 'header length', offset: 0 });
    view.setBigUint64(0, 2n ** 40n, true);
    expect(errorOf(bytes).message).toMatch(/exceeds the limit/);
    expect(errorOf(new Uint8Array(5))).toMatchObject({ field: 'header length', offset: 0 });
  });

  it('rejects invalid JSON and non-object headers', () => {
    expect(errorOf(withHeader('{"a": ', 0))).toMatchObject({ field: 'header', offset: 8 });
    expect(errorOf(withHeader('[1]', 0)).message).toMatch(/expected a JSON object/);
  });

  it('checks dtype, shape and data offsets against the data section', () => {
    const tensor = (entry: object) => withHeader({ t: entry }, 16);
    expect(errorOf(tensor({ dtype: 'F33', shape: [4], data_offsets: [0, 16] })).field).toBe('$["t"].dtype');
    expect(errorOf(tensor({ dtype: 'F32', shape: [-1], data_offsets: [0, 16] })).field).toBe('$["t"].shape');
    expect(errorOf(tensor({ dtype: 'F32', shape: [4], data_offsets: [8, 4] })).field).toBe('$["t"].data_offsets');
    expect(errorOf(tensor({ dtype: 'F32', shape: [8], data_offsets: [0, 32] })).message).toMatch(
      /past the data section/,
    );
    expect(errorOf(tensor({ dtype: 'F32', shape: [3], data_offsets: [0, 16] })).message).toMatch(/needs 12/);
    expect(errorOf(tensor({ dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 16] })).message).toMatch(
      /overflows/,
    );
    const overlap = withHeader(
      { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
      16,
    );
    expect(errorOf(overlap).message).toMatch(/overlaps tensor a/);
    expect(errorOf(withHeader({ __metadata__: { a: 1 } }, 0)).field).toBe('$["__metadata__"]');
  });

  it('refuses to decode integer dtypes as floats', async () => {
    const bytes = withHeader({ t: { dtype: 'I32', shape: [2], data_offsets: [0, 8] } }, 8);
    const file = SafetensorsFile.fromSource(memoryByteSource(bytes));
    await expect(file.tensor('t')!.read()).rejects.toThrow(UnsupportedError);
  });
});
