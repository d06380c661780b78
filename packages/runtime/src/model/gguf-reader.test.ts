import { FormatError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { ALL_VALUE_TYPES_METADATA, smallGgufInput, testValues } from '../__fixtures__/small-gguf.js';
import { memoryByteSource } from './byte-source.js';
import { GgufFile } from './gguf-file.js';
import { parseGgufHeader } from './gguf-reader.js';
import type { GgufValue } from './gguf-value.js';
import { encodeGguf } from './gguf-writer.js';

function open(bytes: Uint8Array): GgufFile {
  return GgufFile.fromSource(memoryByteSource(bytes, 'test.gguf'));
}

function formatErrorOf(action: () => unknown): FormatError {
  try {
    action();
  } catch (error) {
    if (error instanceof FormatError) return error;
    throw error;
  }
  throw new Error('expected a FormatError');
}

/** Overwrites a little-endian uint32 at `offset` in a copy. */
function withUint32(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(offset, value, true);
  return copy;
}

describe('GGUF reader', () => {
  for (const version of [1, 2, 3] as const) {
    it(`round-trips every metadata type and tensor type through version ${version}`, async () => {
      const input = smallGgufInput(version);
      const file = open(encodeGguf(input));
      expect(file.version).toBe(version);
      for (const [key, value] of input.metadata) expect(file.metadata.get(key)?.value).toEqual(value);
      expect(file.tensorNames()).toEqual(input.tensors.map((tensor) => tensor.name));
      const exact = await file.tensor('tensor.f32')!.read();
      expect(exact).toEqual(testValues(128, 1));
      expect(await file.tensor('tensor.f64')!.read()).toEqual(testValues(128, 4));
      // rounding and quantisation error bounds of each type for values in [-2, 2)
      const tolerance: Record<string, number> = {
        f16: 2 ** -10,
        bf16: 2 ** -7,
        q8_0: 2 / 127,
        q4_0: 2 / 7,
        q4_1: 4 / 15,
      };
      for (const [type, bound] of Object.entries(tolerance)) {
        const index = ['f32', 'f16', 'bf16', 'f64', 'q8_0', 'q4_0', 'q4_1'].indexOf(type);
        const read = await file.tensor(`tensor.${type}`)!.read();
        const expected = testValues(128, index + 1);
        const worst = Math.max(...read.map((value, position) => Math.abs(value - expected[position]!)));
        expect(worst, type).toBeLessThanOrEqual(bound);
        expect(worst, type).toBeGreaterThan(0);
      }
      expect(file.tensor('tensor.3d')!.shape).toEqual([2, 3, 4]);
      expect(await file.tensor('tensor.vector')!.read()).toEqual(testValues(5, 99));
    });
  }

  it('v1 stores counts, lengths and dimensions in 32 bits, v2/v3 in 64 bits', () => {
    const metadata: [string, GgufValue][] = [['a', { type: 'string', value: 'xyz' }]];
    const v1 = encodeGguf({ version: 1, metadata, tensors: [] });
    const v3 = encodeGguf({ version: 3, metadata, tensors: [] });
    // magic, version, tensor count, kv count, key length, key, type, string length, string; padded to 32
    const padded = (length: number) => Math.ceil(length / 32) * 32;
    expect(v1.length).toBe(padded(4 + 4 + 4 + 4 + 4 + 1 + 4 + 4 + 3));
    expect(v3.length).toBe(padded(4 + 4 + 8 + 8 + 8 + 1 + 4 + 8 + 3));
    expect(new DataView(v1.buffer).getUint32(8, true)).toBe(0);
    expect(new DataView(v1.buffer).getUint32(12, true)).toBe(1);
    expect(new DataView(v3.buffer).getBigUint64(16, true)).toBe(1n);
    expect(parseGgufHeader(memoryByteSource(v1)).metadata.get('a')?.value.value).toBe('xyz');
  });

  it('reads rows without reading the rest of the tensor', async () => {
    const file = open(encodeGguf(smallGgufInput(3)));
    const rows = await file.tensor('tensor.q8_0')!.readRows(1, 1);
    const all = await file.tensor('tensor.q8_0')!.read();
    expect(rows).toEqual(all.subarray(64, 128));
    await expect(file.tensor('tensor.q8_0')!.readRows(1, 2)).rejects.toThrow(RangeError);
  });

  it('honours general.alignment', () => {
    const bytes = encodeGguf(smallGgufInput(3, 64));
    const header = parseGgufHeader(memoryByteSource(bytes));
    expect(header.alignment).toBe(64);
    expect(header.dataStart % 64).toBe(0);
    for (const tensor of header.tensors) expect((tensor.dataOffset - header.dataStart) % 64).toBe(0);
    expect(parseGgufHeader(memoryByteSource(encodeGguf(smallGgufInput(3)))).alignment).toBe(32);
  });

  it('rejects a wrong magic, an unknown version and big-endian files', () => {
    const bytes = encodeGguf(smallGgufInput(3));
    const magic = formatErrorOf(() => parseGgufHeader(memoryByteSource(withUint32(bytes, 0, 0x12345678), 'x.gguf')));
    expect(magic).toMatchObject({ file: 'x.gguf', field: 'magic', offset: 0 });
    expect(formatErrorOf(() => open(withUint32(bytes, 4, 4)))).toMatchObject({ field: 'version', offset: 4 });
    expect(formatErrorOf(() => open(withUint32(bytes, 4, 0x03000000))).message).toMatch(/big-endian/);
  });

  it('gives a FormatError at the right offset for every truncation of the header', () => {
    const bytes = encodeGguf(smallGgufInput(2));
    const header = parseGgufHeader(memoryByteSource(bytes));
    for (let length = 0; length < header.dataStart; length++) {
      const error = formatErrorOf(() => parseGgufHeader(memoryByteSource(bytes.subarray(0, length), 'cut.gguf')));
      expect(error.file).toBe('cut.gguf');
      expect(error.field).toBeTruthy();
      expect(error.offset).toBeGreaterThanOrEqual(0);
      expect(error.offset).toBeLessThanOrEqual(length);
    }
  });

  it('rejects tensor data that runs past the end of the file', () => {
    const bytes = encodeGguf(smallGgufInput(3));
    const error = formatErrorOf(() => open(bytes.subarray(0, bytes.length - 1)));
    expect(error.field).toMatch(/^tensor .* data$/);
    expect(error.message).toMatch(/past the end/);
  });

  it('rejects counts larger than the file could hold before allocating anything', () => {
    const bytes = encodeGguf(smallGgufInput(3));
    const view = new DataView(bytes.slice().buffer);
    view.setBigUint64(8, 2n ** 62n, true);
    const error = formatErrorOf(() => open(new Uint8Array(view.buffer)));
    expect(error).toMatchObject({ field: 'tensor_count', offset: 8 });
  });

  it('names the metadata key whose array length is impossible', () => {
    const metadata: [string, GgufValue][] = [['big', { type: 'array', elementType: 'uint32', value: [1, 2] }]];
    const bytes = encodeGguf({ version: 3, metadata, tensors: [] });
    // array length sits after magic, version, counts, key (8 + 3), value type, element type
    const lengthOffset = 4 + 4 + 8 + 8 + 8 + 3 + 4 + 4;
    const copy = bytes.slice();
    new DataView(copy.buffer).setBigUint64(lengthOffset, 1000n, true);
    expect(formatErrorOf(() => open(copy))).toMatchObject({ field: 'big (array length)', offset: lengthOffset });
  });

  it('rejects unknown value types, invalid bools, misaligned and overlapping tensors, bad alignment', () => {
    const bool = encodeGguf({ version: 3, metadata: [['flag', { type: 'bool', value: true }]], tensors: [] });
    const badBool = bool.slice();
    // magic, version, two counts, key length + 'flag', value type: the bool sits at 40
    badBool[40] = 2;
    expect(formatErrorOf(() => open(badBool))).toMatchObject({ field: 'flag', offset: 40 });
    expect(formatErrorOf(() => open(withUint32(bool, 36, 13))).message).toMatch(/unknown value type 13/);

    const tensors = encodeGguf({
      version: 3,
      metadata: [],
      tensors: [
        { name: 'a', shape: [8], type: 'f32', data: testValues(8) },
        { name: 'b', shape: [8], type: 'f32', data: testValues(8) },
      ],
    });
    const header = parseGgufHeader(memoryByteSource(tensors));
    // name length + 'b', n_dimensions, one dimension, type: then the offset (32, one aligned f32 x 8 further)
    const position = header.tensors[1]!.infoOffset + 8 + 1 + 4 + 8 + 4;
    expect(new DataView(tensors.buffer).getBigUint64(position, true)).toBe(32n);
    const misaligned = tensors.slice();
    new DataView(misaligned.buffer).setBigUint64(position, 4n, true);
    expect(formatErrorOf(() => open(misaligned))).toMatchObject({ field: 'tensor b offset', offset: position });
    const overlapping = tensors.slice();
    new DataView(overlapping.buffer).setBigUint64(position, 0n, true);
    expect(formatErrorOf(() => open(overlapping)).message).toMatch(/overlaps tensor a/);

    const aligned = encodeGguf({
      version: 3,
      metadata: [['general.alignment', { type: 'uint32', value: 24 }]],
      tensors: [],
    });
    expect(formatErrorOf(() => open(aligned))).toMatchObject({ field: 'general.alignment' });
  });

  it('rejects unknown tensor types and dimensions that do not fill whole blocks', () => {
    const bytes = encodeGguf({
      version: 3,
      metadata: [],
      tensors: [{ name: 't', shape: [32], type: 'q8_0', data: testValues(32) }],
    });
    const header = parseGgufHeader(memoryByteSource(bytes));
    const typeOffset = header.tensors[0]!.infoOffset + 8 + 1 + 4 + 8;
    expect(formatErrorOf(() => open(withUint32(bytes, typeOffset, 99)))).toMatchObject({
      field: 'tensor t type',
      offset: typeOffset,
    });
    const halfBlock = bytes.slice();
    new DataView(halfBlock.buffer).setBigUint64(typeOffset - 8, 16n, true);
    expect(formatErrorOf(() => open(halfBlock)).message).toMatch(/not a multiple of the q8_0 block size 32/);
  });

  it('rejects duplicate keys and duplicate tensor names', () => {
    const duplicate = encodeGguf({
      version: 3,
      metadata: [
        ['k', { type: 'uint8', value: 1 }],
        ['k', { type: 'uint8', value: 2 }],
      ],
      tensors: [],
    });
    expect(formatErrorOf(() => open(duplicate)).message).toMatch(/duplicate key/);
  });

  it('keeps every metadata value of the fixture list', () => {
    expect(ALL_VALUE_TYPES_METADATA.map(([, value]) => value.type)).toEqual(
      expect.arrayContaining([
        'uint8',
        'int8',
        'uint16',
        'int16',
        'uint32',
        'int32',
        'float32',
        'bool',
        'string',
        'array',
        'uint64',
        'int64',
        'float64',
      ]),
    );
  });
});
