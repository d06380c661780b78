/**
 * safetensors writer (huggingface/safetensors format) for fixture models and tests: 8-byte
 * little-endian header length, JSON header padded with spaces to a multiple of 8 (as the reference
 * implementation does), then the tensors back to back in header order.
 *
 * @packageDocumentation
 */
import { writeFileSync } from 'node:fs';
import { ConfigError } from '@fairkv/core';
import { numberToBfloat16Bits, numberToFloat16Bits } from './float16.js';
import { elementCountOf } from './stored-tensor.js';

/** Float dtypes the writer encodes. */
export type WritableSafetensorsDtype = 'F32' | 'F16' | 'BF16';

/** One tensor to write. */
export interface SafetensorsTensorInput {
  name: string;
  /** Row-major shape (PyTorch order). */
  shape: readonly number[];
  dtype: WritableSafetensorsDtype;
  data: ArrayLike<number>;
}

function encodeData(tensor: SafetensorsTensorInput): Uint8Array {
  const count = tensor.data.length;
  const bytes = new Uint8Array(count * (tensor.dtype === 'F32' ? 4 : 2));
  const view = new DataView(bytes.buffer);
  for (let index = 0; index < count; index++) {
    const value = tensor.data[index]!;
    if (tensor.dtype === 'F32') view.setFloat32(4 * index, value, true);
    else if (tensor.dtype === 'F16') view.setUint16(2 * index, numberToFloat16Bits(value), true);
    else view.setUint16(2 * index, numberToBfloat16Bits(value), true);
  }
  return bytes;
}

/** Encodes a safetensors file in memory. */
export function encodeSafetensors(
  tensors: readonly SafetensorsTensorInput[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const tensor of tensors) {
    const elementCount = elementCountOf(tensor.shape);
    if (tensor.data.length !== elementCount) {
      throw new ConfigError(
        `tensor ${tensor.name}: shape ${tensor.shape.join('x')} needs ${elementCount} values, got ${tensor.data.length}`,
      );
    }
    if (Object.hasOwn(header, tensor.name)) throw new ConfigError(`tensor ${tensor.name}: duplicate name`);
    const data = encodeData(tensor);
    header[tensor.name] = {
      dtype: tensor.dtype,
      shape: [...tensor.shape],
      data_offsets: [offset, offset + data.length],
    };
    chunks.push(data);
    offset += data.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const jsonBytes = new TextEncoder().encode(json);
  const output = new Uint8Array(8 + jsonBytes.length + offset);
  new DataView(output.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  output.set(jsonBytes, 8);
  let position = 8 + jsonBytes.length;
  for (const chunk of chunks) {
    output.set(chunk, position);
    position += chunk.length;
  }
  return output;
}

/** Writes a safetensors file. */
export function writeSafetensorsFile(
  path: string,
  tensors: readonly SafetensorsTensorInput[],
  metadata: Record<string, string> = {},
): void {
  writeFileSync(path, encodeSafetensors(tensors, metadata));
}
