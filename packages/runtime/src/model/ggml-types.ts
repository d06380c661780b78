/**
 * ggml tensor types as GGUF stores them (ggml.h `enum ggml_type`; block sizes as in gguf-py's
 * `GGML_QUANT_SIZES`), and dequantisation of the types fairkv reads to float32. Every listed type can
 * be bounds-checked; unlisted ids are malformed input.
 *
 * @packageDocumentation
 */
import { UnsupportedError } from '@fairkv/core';
import { decodeBfloat16Array, decodeFloat16Array, float16BitsToNumber } from './float16.js';
import {
  dequantizeQ2K,
  dequantizeQ3K,
  dequantizeQ4K,
  dequantizeQ5_0,
  dequantizeQ5_1,
  dequantizeQ5K,
  dequantizeQ6K,
} from './ggml-block-dequantize.js';

/** Storage layout of one ggml tensor type: `blockSize` elements take `blockBytes` bytes. */
export interface GgmlTypeInfo {
  /** Numeric id in GGUF tensor infos. */
  readonly id: number;
  /** Name as ggml prints it (`f32`, `q8_0`, ...). */
  readonly name: string;
  /** Elements per block (1 for plain floats and integers). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly blockBytes: number;
  /** Whether {@link dequantizeGgml} can decode it. */
  readonly readable: boolean;
}

const TYPES: readonly GgmlTypeInfo[] = [
  { id: 0, name: 'f32', blockSize: 1, blockBytes: 4, readable: true },
  { id: 1, name: 'f16', blockSize: 1, blockBytes: 2, readable: true },
  { id: 2, name: 'q4_0', blockSize: 32, blockBytes: 18, readable: true },
  { id: 3, name: 'q4_1', blockSize: 32, blockBytes: 20, readable: true },
  { id: 6, name: 'q5_0', blockSize: 32, blockBytes: 22, readable: true },
  { id: 7, name: 'q5_1', blockSize: 32, blockBytes: 24, readable: true },
  { id: 8, name: 'q8_0', blockSize: 32, blockBytes: 34, readable: true },
  { id: 9, name: 'q8_1', blockSize: 32, blockBytes: 36, readable: false },
  { id: 10, name: 'q2_K', blockSize: 256, blockBytes: 84, readable: true },
  { id: 11, name: 'q3_K', blockSize: 256, blockBytes: 110, readable: true },
  { id: 12, name: 'q4_K', blockSize: 256, blockBytes: 144, readable: true },
  { id: 13, name: 'q5_K', blockSize: 256, blockBytes: 176, readable: true },
  { id: 14, name: 'q6_K', blockSize: 256, blockBytes: 210, readable: true },
  { id: 15, name: 'q8_K', blockSize: 256, blockBytes: 292, readable: false },
  { id: 16, name: 'iq2_xxs', blockSize: 256, blockBytes: 66, readable: false },
  { id: 17, name: 'iq2_xs', blockSize: 256, blockBytes: 74, readable: false },
  { id: 18, name: 'iq3_xxs', blockSize: 256, blockBytes: 98, readable: false },
  { id: 19, name: 'iq1_s', blockSize: 256, blockBytes: 50, readable: false },
  { id: 20, name: 'iq4_nl', blockSize: 32, blockBytes: 18, readable: false },
  { id: 21, name: 'iq3_s', blockSize: 256, blockBytes: 110, readable: false },
  { id: 22, name: 'iq2_s', blockSize: 256, blockBytes: 82, readable: false },
  { id: 23, name: 'iq4_xs', blockSize: 256, blockBytes: 136, readable: false },
  { id: 24, name: 'i8', blockSize: 1, blockBytes: 1, readable: false },
  { id: 25, name: 'i16', blockSize: 1, blockBytes: 2, readable: false },
  { id: 26, name: 'i32', blockSize: 1, blockBytes: 4, readable: false },
  { id: 27, name: 'i64', blockSize: 1, blockBytes: 8, readable: false },
  { id: 28, name: 'f64', blockSize: 1, blockBytes: 8, readable: true },
  { id: 29, name: 'iq1_m', blockSize: 256, blockBytes: 56, readable: false },
  { id: 30, name: 'bf16', blockSize: 1, blockBytes: 2, readable: true },
  { id: 34, name: 'tq1_0', blockSize: 256, blockBytes: 54, readable: false },
  { id: 35, name: 'tq2_0', blockSize: 256, blockBytes: 66, readable: false },
  { id: 39, name: 'mxfp4', blockSize: 32, blockBytes: 17, readable: false },
];

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const BY_ID = new Map(TYPES.map((type) => [type.id, type]));
const BY_NAME = new Map(TYPES.map((type) => [type.name, type]));

/** The ggml types fairkv knows the layout of (it can bounds-check them), by id; undefined if unknown. */
export function ggmlTypeById(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

/** A known ggml type by name (`f32`, `f16`, `bf16`, `q8_0`, ...). */
export function ggmlTypeByName(name: string): GgmlTypeInfo | undefined {
  return BY_NAME.get(name);
}

/** Names of the types {@link dequantizeGgml} decodes. */
export const READABLE_GGML_TYPES: readonly string[] = TYPES.filter((type) => type.readable).map((type) => type.name);

/** Bytes taken by `elementCount` elements (a whole number of blocks) of `type`. */
export function ggmlByteLength(type: GgmlTypeInfo, elementCount: number): number {
  return (elementCount / type.blockSize) * type.blockBytes;
}

/**
 * Decodes `elementCount` elements of `type` from `bytes` (little-endian, starting at index 0) to
 * float32, following ggml-quants.c `dequantize_row_*`.
 * @throws UnsupportedError for types fairkv cannot decode (q8_1, q8_K, i-quants, ternary, mxfp4 and integer types).
 */
export function dequantizeGgml(type: GgmlTypeInfo, bytes: Uint8Array, elementCount: number): Float32Array {
  const output = new Float32Array(elementCount);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (type.name) {
    case 'f32':
      if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) {
        output.set(new Float32Array(bytes.buffer, bytes.byteOffset, elementCount));
        return output;
      }
      for (let index = 0; index < elementCount; index++) output[index] = view.getFloat32(4 * index, true);
      return output;
    case 'f64':
      for (let index = 0; index < elementCount; index++) output[index] = view.getFloat64(8 * index, true);
      return output;
    case 'f16':
      decodeFloat16Array(bytes, 0, elementCount, output);
      return output;
    case 'bf16':
      decodeBfloat16Array(bytes, 0, elementCount, output);
      return output;
    case 'q8_0':
      for (let block = 0; block < elementCount / 32; block++) {
        const base = block * 34;
        const scale = float16BitsToNumber(view.getUint16(base, true));
        for (let index = 0; index < 32; index++) output[block * 32 + index] = scale * view.getInt8(base + 2 + index);
      }
      return output;
    case 'q4_0':
      for (let block = 0; block < elementCount / 32; block++) {
        const base = block * 18;
        const scale = float16BitsToNumber(view.getUint16(base, true));
        for (let index = 0; index < 16; index++) {
          const packed = bytes[base + 2 + index]!;
          output[block * 32 + index] = scale * ((packed & 0x0f) - 8);
          output[block * 32 + index + 16] = scale * ((packed >>> 4) - 8);
        }
      }
      return output;
    case 'q4_1':
      for (let block = 0; block < elementCount / 32; block++) {
        const base = block * 20;
        const scale = float16BitsToNumber(view.getUint16(base, true));
        const minimum = float16BitsToNumber(view.getUint16(base + 2, true));
        for (let index = 0; index < 16; index++) {
          const packed = bytes[base + 4 + index]!;
          output[block * 32 + index] = scale * (packed & 0x0f) + minimum;
          output[block * 32 + index + 16] = scale * (packed >>> 4) + minimum;
        }
      }
      return output;
    case 'q5_0':
      dequantizeQ5_0(bytes, output);
      return output;
    case 'q5_1':
      dequantizeQ5_1(bytes, output);
      return output;
    case 'q2_K':
      dequantizeQ2K(bytes, output);
      return output;
    case 'q3_K':
      dequantizeQ3K(bytes, output);
      return output;
    case 'q4_K':
      dequantizeQ4K(bytes, output);
      return output;
    case 'q5_K':
      dequantizeQ5K(bytes, output);
      return output;
    case 'q6_K':
      dequantizeQ6K(bytes, output);
      return output;
    default:
      throw new UnsupportedError(
        `tensor type ${type.name} cannot be dequantised yet: expected one of ${READABLE_GGML_TYPES.join(', ')}`,
      );
  }
}
