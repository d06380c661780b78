/**
 * Small GGUF inputs for reader tests: every metadata value type (nested arrays included) and one
 * tensor of each readable type, with values exactly representable where the type allows.
 */
import type { WritableGgmlType } from '../model/ggml-quantize.js';
import type { GgufVersion } from '../model/gguf-reader.js';
import type { GgufValue } from '../model/gguf-value.js';
import type { GgufWriteInput } from '../model/gguf-writer.js';

/** Metadata covering every GGUF value type. */
export const ALL_VALUE_TYPES_METADATA: [string, GgufValue][] = [
  ['test.uint8', { type: 'uint8', value: 255 }],
  ['test.int8', { type: 'int8', value: -128 }],
  ['test.uint16', { type: 'uint16', value: 65535 }],
  ['test.int16', { type: 'int16', value: -32768 }],
  ['test.uint32', { type: 'uint32', value: 4294967295 }],
  ['test.int32', { type: 'int32', value: -2147483648 }],
  ['test.float32', { type: 'float32', value: 1.5 }],
  ['test.bool', { type: 'bool', value: true }],
  ['test.string', { type: 'string', value: 'héllo ▁ 日本' }],
  ['test.uint64', { type: 'uint64', value: 18446744073709551615n }],
  ['test.int64', { type: 'int64', value: -9223372036854775808n }],
  ['test.float64', { type: 'float64', value: Math.PI }],
  ['test.empty_string', { type: 'string', value: '' }],
  ['test.array.strings', { type: 'array', elementType: 'string', value: ['a', '', 'ccc'] }],
  ['test.array.floats', { type: 'array', elementType: 'float32', value: [0.5, -2, 1024] }],
  ['test.array.bools', { type: 'array', elementType: 'bool', value: [true, false] }],
  ['test.array.uint64', { type: 'array', elementType: 'uint64', value: [0n, 2n ** 63n] }],
  ['test.array.empty', { type: 'array', elementType: 'int32', value: [] }],
  [
    'test.array.nested',
    {
      type: 'array',
      elementType: 'array',
      value: [
        { type: 'array', elementType: 'int16', value: [1, -2, 3] },
        { type: 'array', elementType: 'string', value: ['x'] },
        { type: 'array', elementType: 'array', value: [{ type: 'array', elementType: 'uint8', value: [7] }] },
      ],
    },
  ],
];

/** Deterministic values in [-2, 2) with a few exact halves. */
export function testValues(count: number, seed = 1): Float32Array {
  const values = new Float32Array(count);
  let state = seed;
  for (let index = 0; index < count; index++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    values[index] = ((state >>> 8) / 2 ** 24) * 4 - 2;
  }
  return values;
}

/** A GGUF with every value type and a 2 x 64 tensor of each readable type. */
export function smallGgufInput(version: GgufVersion, alignment?: number): GgufWriteInput {
  const metadata: [string, GgufValue][] = [...ALL_VALUE_TYPES_METADATA];
  if (alignment !== undefined) metadata.unshift(['general.alignment', { type: 'uint32', value: alignment }]);
  const types: WritableGgmlType[] = ['f32', 'f16', 'bf16', 'f64', 'q8_0', 'q4_0', 'q4_1'];
  return {
    version,
    metadata:
      version === 1 ? metadata.filter(([, value]) => !['uint64', 'int64', 'float64'].includes(value.type)) : metadata,
    tensors: [
      ...types.map((type, index) => ({
        name: `tensor.${type}`,
        shape: [2, 64],
        type,
        data: testValues(128, index + 1),
      })),
      { name: 'tensor.vector', shape: [5], type: 'f32' as const, data: testValues(5, 99) },
      { name: 'tensor.3d', shape: [2, 3, 4], type: 'f32' as const, data: testValues(24, 98) },
    ],
  };
}
