/**
 * Dequantisation of ggml's 5-bit block types and k-quants (ggml-quants.c `dequantize_row_q5_0`,
 * `_q5_1`, `_q2_K`, `_q3_K`, `_q4_K`, `_q5_K`, `_q6_K`; block layouts from ggml-common.h). Every
 * product is rounded to float32 where the numpy reference in llama.cpp's gguf-py/gguf/quants.py
 * rounds, so results match it bit for bit. The caller guarantees whole blocks.
 *
 * @packageDocumentation
 */
import { float16BitsToNumber } from './float16.js';

const f = Math.fround;

function half(bytes: Uint8Array, offset: number): number {
  return float16BitsToNumber(bytes[offset]! | (bytes[offset + 1]! << 8));
}

function uint32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
}

/** q5_0: 32 elements in 22 bytes: f16 scale, 32 high bits, 16 bytes of low nibbles; value = d * (q - 16). */
export function dequantizeQ5_0(bytes: Uint8Array, output: Float32Array): void {
  for (let block = 0; block < output.length / 32; block++) {
    const base = block * 22;
    const scale = half(bytes, base);
    const highBits = uint32(bytes, base + 2);
    for (let index = 0; index < 16; index++) {
      const packed = bytes[base + 6 + index]!;
      const low = (packed & 0x0f) | (((highBits >>> index) & 1) << 4);
      const high = (packed >>> 4) | (((highBits >>> (index + 16)) & 1) << 4);
      output[block * 32 + index] = scale * (low - 16);
      output[block * 32 + index + 16] = scale * (high - 16);
    }
  }
}

/** q5_1: 32 elements in 24 bytes: f16 scale and minimum, 32 high bits, 16 bytes of nibbles; value = d * q + m. */
export function dequantizeQ5_1(bytes: Uint8Array, output: Float32Array): void {
  for (let block = 0; block < output.length / 32; block++) {
    const base = block * 24;
    const scale = half(bytes, base);
    const minimum = half(bytes, base + 2);
    const highBits = uint32(bytes, base + 4);
    for (let index = 0; index < 16; index++) {
      const packed = bytes[base + 8 + index]!;
      const low = (packed & 0x0f) | (((highBits >>> index) & 1) << 4);
      const high = (packed >>> 4) | (((highBits >>> (index + 16)) & 1) << 4);
      output[block * 32 + index] = f(scale * low) + minimum;
      output[block * 32 + index + 16] = f(scale * high) + minimum;
    }
  }
}

/** q2_K: 256 elements in 84 bytes: 16 scale bytes (4-bit scale, 4-bit min), 64 bytes of 2-bit values, f16 d and dmin. */
export function dequantizeQ2K(bytes: Uint8Array, output: Float32Array): void {
  for (let block = 0; block < output.length / 256; block++) {
    const base = block * 84;
    const d = half(bytes, base + 80);
    const dmin = half(bytes, base + 82);
    for (let element = 0; element < 256; element++) {
      const group = element >> 4;
      const packedScale = bytes[base + group]!;
      const half128 = element >> 7;
      const shift = ((element & 127) >> 5) * 2;
      const q = (bytes[base + 16 + half128 * 32 + (element & 31)]! >> shift) & 3;
      output[block * 256 + element] = f(f(d * (packedScale & 0x0f)) * q) - f(dmin * (packedScale >> 4));
    }
  }
}

/** q3_K: 256 elements in 110 bytes: 32 bytes of high bits, 64 of 2-bit values, 12 of 6-bit scales, f16 d. */
export function dequantizeQ3K(bytes: Uint8Array, output: Float32Array): void {
  const scales = new Int32Array(16);
  for (let block = 0; block < output.length / 256; block++) {
    const base = block * 110;
    const d = half(bytes, base + 108);
    for (let group = 0; group < 16; group++) {
      const low = (bytes[base + 96 + (group % 8)]! >> (4 * (group >> 3))) & 0x0f;
      const high = (bytes[base + 104 + (group % 4)]! >> (2 * (group >> 2))) & 3;
      scales[group] = (low | (high << 4)) - 32;
    }
    for (let element = 0; element < 256; element++) {
      const half128 = element >> 7;
      const shift = ((element & 127) >> 5) * 2;
      const low = (bytes[base + 32 + half128 * 32 + (element & 31)]! >> shift) & 3;
      const highSet = (bytes[base + (element & 31)]! >> (element >> 5)) & 1;
      output[block * 256 + element] = f(d * scales[element >> 4]!) * (low - (highSet ? 0 : 4));
    }
  }
}

/** The 6-bit scales and minimums of q4_K and q5_K (ggml-quants.c `get_scale_min_k4`). */
function scaleAndMinimum(bytes: Uint8Array, offset: number, group: number): [number, number] {
  if (group < 4) return [bytes[offset + group]! & 63, bytes[offset + group + 4]! & 63];
  const packed = bytes[offset + group + 4]!;
  return [
    (packed & 0x0f) | ((bytes[offset + group - 4]! >> 6) << 4),
    (packed >> 4) | ((bytes[offset + group]! >> 6) << 4),
  ];
}

/** q4_K: 256 elements in 144 bytes: f16 d and dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles. */
export function dequantizeQ4K(bytes: Uint8Array, output: Float32Array): void {
  for (let block = 0; block < output.length / 256; block++) {
    const base = block * 144;
    const d = half(bytes, base);
    const dmin = half(bytes, base + 2);
    for (let group = 0; group < 8; group++) {
      const [scale, minimum] = scaleAndMinimum(bytes, base + 4, group);
      const groupScale = f(d * scale);
      const groupMinimum = f(dmin * minimum);
      const shift = 4 * (group & 1);
      const source = base + 16 + (group >> 1) * 32;
      for (let index = 0; index < 32; index++) {
        const q = (bytes[source + index]! >> shift) & 0x0f;
        output[block * 256 + group * 32 + index] = f(groupScale * q) - groupMinimum;
      }
    }
  }
}

/** q5_K: 256 elements in 176 bytes: f16 d and dmin, 12 bytes of scales/mins, 32 bytes of high bits, 128 of nibbles. */
export function dequantizeQ5K(bytes: Uint8Array, output: Float32Array): void {
  for (let block = 0; block < output.length / 256; block++) {
    const base = block * 176;
    const d = half(bytes, base);
    const dmin = half(bytes, base + 2);
    for (let group = 0; group < 8; group++) {
      const [scale, minimum] = scaleAndMinimum(bytes, base + 4, group);
      const groupScale = f(d * scale);
      const groupMinimum = f(dmin * minimum);
      const shift = 4 * (group & 1);
      const source = base + 48 + (group >> 1) * 32;
      for (let index = 0; index < 32; index++) {
        const q = ((bytes[source + index]! >> shift) & 0x0f) | (((bytes[base + 16 + index]! >> group) & 1) << 4);
        output[block * 256 + group * 32 + index] = f(groupScale * q) - groupMinimum;
      }
    }
  }
}

/** q6_K: 256 elements in 210 bytes: 128 bytes of low nibbles, 64 of 2-bit highs, 16 int8 scales, f16 d. */
export function dequantizeQ6K(bytes: Uint8Array, output: Float32Array): void {
  for (let block = 0; block < output.length / 256; block++) {
    const base = block * 210;
    const d = half(bytes, base + 208);
    for (let element = 0; element < 256; element++) {
      const half128 = element >> 7;
      const rest = element & 127;
      const low = (bytes[base + half128 * 64 + (rest & 63)]! >> (4 * (rest >> 6))) & 0x0f;
      const high = (bytes[base + 128 + half128 * 32 + (rest & 31)]! >> (2 * (rest >> 5))) & 3;
      const scale = (bytes[base + 192 + (element >> 4)]! << 24) >> 24;
      output[block * 256 + element] = f(d * scale) * ((low | (high << 4)) - 32);
    }
  }
}
