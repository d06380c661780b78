import { UnsupportedError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import vectors from '../__fixtures__/ggml-dequantize-vectors.json' with { type: 'json' };
import { memoryByteSource } from './byte-source.js';
import { numberToFloat16Bits } from './float16.js';
import { quantizeGgml } from './ggml-quantize.js';
import { dequantizeGgml, ggmlTypeByName, READABLE_GGML_TYPES } from './ggml-types.js';
import { GgufFile } from './gguf-file.js';
import { encodeGguf } from './gguf-writer.js';

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!.map((pair) => Number.parseInt(pair, 16)));
}

describe('ggml dequantisation', () => {
  // vectors: random blocks decoded by the numpy reference of llama.cpp gguf-py/gguf/quants.py
  for (const [name, vector] of Object.entries(vectors as Record<string, { bytes: string; values: string }>)) {
    it(`decodes ${name} bit for bit like llama.cpp's reference`, () => {
      const type = ggmlTypeByName(name)!;
      const bytes = fromHex(vector.bytes);
      const expected = new Float32Array(fromHex(vector.values).buffer);
      expect(bytes.length).toBe(type.blockBytes);
      expect(expected.length).toBe(type.blockSize);
      const decoded = dequantizeGgml(type, bytes, type.blockSize);
      const mismatches = [...decoded].flatMap((value, index) =>
        Object.is(value, expected[index]) ? [] : [{ index, value, expected: expected[index] }],
      );
      expect(mismatches).toEqual([]);
    });
  }

  it('reads k-quant tensors through a GGUF file, rows included', async () => {
    const tensors = Object.entries(vectors as Record<string, { bytes: string; values: string }>).map(
      ([name, vector]) => {
        const type = ggmlTypeByName(name)!;
        // two rows: the reference block, then the same block again
        const block = fromHex(vector.bytes);
        const encoded = new Uint8Array(2 * block.length);
        encoded.set(block);
        encoded.set(block, block.length);
        return { name: `t.${name}`, shape: [2, type.blockSize], type: name, data: { encoded } };
      },
    );
    const file = GgufFile.fromSource(memoryByteSource(encodeGguf({ version: 3, metadata: [], tensors })));
    for (const [name, vector] of Object.entries(vectors as Record<string, { bytes: string; values: string }>)) {
      const expected = new Float32Array(fromHex(vector.values).buffer);
      const tensor = file.tensor(`t.${name}`)!;
      expect(tensor.storedType).toBe(name);
      const whole = await tensor.read();
      expect(whole.subarray(0, expected.length)).toEqual(expected);
      expect(whole.subarray(expected.length)).toEqual(expected);
      expect(await tensor.readRows(1, 1)).toEqual(expected);
    }
  });

  it('decodes q8_0 as scale times int8 and quantises halves away from zero like ggml', () => {
    const type = ggmlTypeByName('q8_0')!;
    const values = Float32Array.from({ length: 32 }, (_, index) => (index - 16) / 16);
    values[0] = -127 / 128; // the absolute maximum: scale exactly 2^-7
    values[1] = -0.5 / 128; // exactly half a step: roundf gives -1 where Math.round would give 0
    values[2] = 2.5 / 128; // and 3 here
    const bytes = quantizeGgml(type, values);
    expect(new DataView(bytes.buffer).getUint16(0, true)).toBe(numberToFloat16Bits(1 / 128));
    expect(new Int8Array(bytes.buffer, 2, 32)[0]).toBe(-127);
    expect(new Int8Array(bytes.buffer, 2, 32)[1]).toBe(-1);
    expect(new Int8Array(bytes.buffer, 2, 32)[2]).toBe(3);
    const decoded = dequantizeGgml(type, bytes, 32);
    for (let index = 0; index < 32; index++)
      expect(Math.abs(decoded[index]! - values[index]!)).toBeLessThanOrEqual(0.5 / 128);
  });

  it('refuses the types it cannot decode with UnsupportedError', () => {
    expect(() => dequantizeGgml(ggmlTypeByName('q8_K')!, new Uint8Array(292), 256)).toThrow(UnsupportedError);
    expect(() => dequantizeGgml(ggmlTypeByName('i32')!, new Uint8Array(4), 1)).toThrow(UnsupportedError);
    expect(READABLE_GGML_TYPES).toEqual(
      expect.arrayContaining([
        'f32',
        'f16',
        'bf16',
        'f64',
        'q4_0',
        'q4_1',
        'q5_0',
        'q5_1',
        'q8_0',
        'q2_K',
        'q3_K',
        'q4_K',
        'q5_K',
        'q6_K',
      ]),
    );
  });
});
