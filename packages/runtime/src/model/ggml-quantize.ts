/**
 * Encoding float values into ggml tensor types, following the reference quantisers in
 * ggml-quantize.c (`quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`, `quantize_row_q4_1_ref`).
 * Used by the GGUF writer (fixture models, tests).
 *
 * @packageDocumentation
 */
import { UnsupportedError } from '@fairkv/core';
import { float16BitsToNumber, numberToBfloat16Bits, numberToFloat16Bits } from './float16.js';
import type { GgmlTypeInfo } from './ggml-types.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** ggml types the writer can encode. */
export type WritableGgmlType = 'f32' | 'f16' | 'bf16' | 'f64' | 'q8_0' | 'q4_0' | 'q4_1';

/** Encodes `values` (a whole number of blocks) as `type`, little-endian. */
export function quantizeGgml(type: GgmlTypeInfo, values: ArrayLike<number>): Uint8Array {
  const count = values.length;
  const bytes = new Uint8Array((count / type.blockSize) * type.blockBytes);
  const view = new DataView(bytes.buffer);
  switch (type.name) {
    case 'f32':
      if (LITTLE_ENDIAN) return new Uint8Array(Float32Array.from(values).buffer);
      for (let index = 0; index < count; index++) view.setFloat32(4 * index, values[index]!, true);
      return bytes;
    case 'f64':
      for (let index = 0; index < count; index++) view.setFloat64(8 * index, values[index]!, true);
      return bytes;
    case 'f16':
      for (let index = 0; index < count; index++) view.setUint16(2 * index, numberToFloat16Bits(values[index]!), true);
      return bytes;
    case 'bf16':
      for (let index = 0; index < count; index++) view.setUint16(2 * index, numberToBfloat16Bits(values[index]!), true);
      return bytes;
    case 'q8_0':
      for (let block = 0; block < count / 32; block++) {
        let absoluteMax = 0;
        for (let index = 0; index < 32; index++)
          absoluteMax = Math.max(absoluteMax, Math.abs(values[block * 32 + index]!));
        const scale = absoluteMax / 127;
        const inverse = scale !== 0 ? 1 / scale : 0;
        view.setUint16(block * 34, numberToFloat16Bits(scale), true);
        for (let index = 0; index < 32; index++) {
          // roundf: halves away from zero, as ggml's reference quantiser
          const scaled = values[block * 32 + index]! * inverse;
          view.setInt8(block * 34 + 2 + index, Math.sign(scaled) * Math.round(Math.abs(scaled)));
        }
      }
      return bytes;
    case 'q4_0':
      for (let block = 0; block < count / 32; block++) {
        let signedMax = 0;
        for (let index = 0; index < 32; index++) {
          const value = values[block * 32 + index]!;
          if (Math.abs(value) > Math.abs(signedMax)) signedMax = value;
        }
        const scale = signedMax / -8;
        const inverse = scale !== 0 ? 1 / scale : 0;
        view.setUint16(block * 18, numberToFloat16Bits(scale), true);
        for (let index = 0; index < 16; index++) {
          const low = Math.min(15, Math.trunc(values[block * 32 + index]! * inverse + 8.5));
          const high = Math.min(15, Math.trunc(values[block * 32 + index + 16]! * inverse + 8.5));
          bytes[block * 18 + 2 + index] = low | (high << 4);
        }
      }
      return bytes;
    case 'q4_1':
      for (let block = 0; block < count / 32; block++) {
        let minimum = Number.POSITIVE_INFINITY;
        let maximum = Number.NEGATIVE_INFINITY;
        for (let index = 0; index < 32; index++) {
          minimum = Math.min(minimum, values[block * 32 + index]!);
          maximum = Math.max(maximum, values[block * 32 + index]!);
        }
        const scale = (maximum - minimum) / 15;
        const inverse = scale !== 0 ? 1 / scale : 0;
        view.setUint16(block * 20, numberToFloat16Bits(scale), true);
        view.setUint16(block * 20 + 2, numberToFloat16Bits(minimum), true);
        // quantise against the stored (rounded) minimum so dequantisation is consistent
        const storedMinimum = float16BitsToNumber(numberToFloat16Bits(minimum));
        for (let index = 0; index < 16; index++) {
          const low = Math.min(
            15,
            Math.max(0, Math.trunc((values[block * 32 + index]! - storedMinimum) * inverse + 0.5)),
          );
          const high = Math.min(
            15,
            Math.max(0, Math.trunc((values[block * 32 + index + 16]! - storedMinimum) * inverse + 0.5)),
          );
          bytes[block * 20 + 4 + index] = low | (high << 4);
        }
      }
      return bytes;
    default:
      throw new UnsupportedError(
        `cannot encode tensor type ${type.name}: expected f32, f16, bf16, f64, q8_0, q4_0 or q4_1`,
      );
  }
}
