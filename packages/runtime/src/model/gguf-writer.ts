/**
 * GGUF writer (versions 1, 2 and 3, ggml docs/gguf.md) for fixture models and tests. Tensors are
 * given in row-major PyTorch order (`[outFeatures, inFeatures]`) and written with GGUF's reversed
 * `ne` dimensions, as llama.cpp's gguf-py does.
 *
 * @packageDocumentation
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { ConfigError } from '@fairkv/core';
import { ByteWriter } from './byte-writer.js';
import { quantizeGgml, type WritableGgmlType } from './ggml-quantize.js';
import { type GgmlTypeInfo, ggmlTypeByName } from './ggml-types.js';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, type GgufVersion } from './gguf-reader.js';
import { GGUF_VALUE_TYPES, type GgufArrayValue, type GgufValue, type GgufValueType } from './gguf-value.js';
import { elementCountOf } from './stored-tensor.js';

/** One tensor to write. */
export interface GgufTensorInput {
  name: string;
  /** Row-major shape, outermost first. */
  shape: readonly number[];
  /** Storage type; the values are converted (rounded or quantised) to it. */
  type: WritableGgmlType | string;
  /** Values in row-major order, or the already encoded bytes of `type` (any known ggml type). */
  data: ArrayLike<number> | { encoded: Uint8Array };
}

/** What to write. */
export interface GgufWriteInput {
  /** Format version (default 3). */
  version?: GgufVersion;
  /** Metadata in the order to write it. `general.alignment` sets the alignment. */
  metadata: Iterable<readonly [string, GgufValue]>;
  tensors: readonly GgufTensorInput[];
}

function writeScalar(writer: ByteWriter, type: GgufValueType, value: unknown, width: 4 | 8): void {
  switch (type) {
    case 'uint8':
      writer.u8(value as number);
      break;
    case 'int8':
      writer.i8(value as number);
      break;
    case 'uint16':
      writer.u16(value as number);
      break;
    case 'int16':
      writer.i16(value as number);
      break;
    case 'uint32':
      writer.u32(value as number);
      break;
    case 'int32':
      writer.i32(value as number);
      break;
    case 'float32':
      writer.f32(value as number);
      break;
    case 'float64':
      writer.f64(value as number);
      break;
    case 'uint64':
      writer.u64(value as bigint);
      break;
    case 'int64':
      writer.i64(value as bigint);
      break;
    case 'bool':
      writer.u8(value ? 1 : 0);
      break;
    case 'string':
      writeString(writer, value as string, width);
      break;
    case 'array':
      writeArray(writer, value as GgufArrayValue, width);
      break;
  }
}

function writeLength(writer: ByteWriter, length: number, width: 4 | 8): void {
  if (width === 4) {
    if (length > 0xffffffff) throw new ConfigError(`GGUF version 1 cannot store a length of ${length}`);
    writer.u32(length);
  } else {
    writer.u64(length);
  }
}

function writeString(writer: ByteWriter, text: string, width: 4 | 8): void {
  const bytes = writer.utf8(text);
  writeLength(writer, bytes.length, width);
  writer.bytes(bytes);
}

function writeArray(writer: ByteWriter, array: GgufArrayValue, width: 4 | 8): void {
  writer.u32(GGUF_VALUE_TYPES.indexOf(array.elementType));
  writeLength(writer, array.value.length, width);
  for (const item of array.value) writeScalar(writer, array.elementType, item, width);
}

interface PreparedTensor {
  input: GgufTensorInput;
  type: GgmlTypeInfo;
  byteLength: number;
  offset: number;
}

function prepare(input: GgufWriteInput): { header: Uint8Array; tensors: PreparedTensor[]; alignment: number } {
  const version = input.version ?? 3;
  const width: 4 | 8 = version === 1 ? 4 : 8;
  const metadata = [...input.metadata];
  const alignmentEntry = metadata.find(([key]) => key === 'general.alignment');
  const alignment = alignmentEntry ? Number(alignmentEntry[1].value) : GGUF_DEFAULT_ALIGNMENT;
  const writer = new ByteWriter();
  writer.u32(GGUF_MAGIC);
  writer.u32(version);
  writeLength(writer, input.tensors.length, width);
  writeLength(writer, metadata.length, width);
  for (const [key, value] of metadata) {
    writeString(writer, key, width);
    writer.u32(GGUF_VALUE_TYPES.indexOf(value.type));
    writeScalar(writer, value.type, value.type === 'array' ? value : value.value, width);
  }
  let offset = 0;
  const tensors: PreparedTensor[] = [];
  for (const tensor of input.tensors) {
    const type = ggmlTypeByName(tensor.type);
    if (!type) throw new ConfigError(`tensor ${tensor.name}: unknown type ${tensor.type}`);
    const elementCount = elementCountOf(tensor.shape);
    const expectedBytes = (elementCount / type.blockSize) * type.blockBytes;
    if ('encoded' in tensor.data ? tensor.data.encoded.length !== expectedBytes : tensor.data.length !== elementCount) {
      throw new ConfigError(
        `tensor ${tensor.name}: shape ${tensor.shape.join('x')} needs ${elementCount} values (${expectedBytes} bytes of ${type.name})`,
      );
    }
    const innermost = tensor.shape[tensor.shape.length - 1] ?? 1;
    if (innermost % type.blockSize !== 0) {
      throw new ConfigError(
        `tensor ${tensor.name}: innermost dimension ${innermost} is not a multiple of the ${type.name} block ${type.blockSize}`,
      );
    }
    writeString(writer, tensor.name, width);
    writer.u32(tensor.shape.length);
    for (const dimension of [...tensor.shape].reverse()) writeLength(writer, dimension, width);
    writer.u32(type.id);
    writer.u64(offset);
    const byteLength = (elementCount / type.blockSize) * type.blockBytes;
    tensors.push({ input: tensor, type, byteLength, offset });
    offset += Math.ceil(byteLength / alignment) * alignment;
  }
  writer.padTo(alignment);
  return { header: writer.toBytes(), tensors, alignment };
}

function encodeTensor(tensor: PreparedTensor): Uint8Array {
  const { data } = tensor.input;
  return 'encoded' in data ? data.encoded : quantizeGgml(tensor.type, data);
}

/** Encodes a whole GGUF file in memory (small files: tests, fuzzing). */
export function encodeGguf(input: GgufWriteInput): Uint8Array {
  const { header, tensors, alignment } = prepare(input);
  const last = tensors[tensors.length - 1];
  const dataLength = last ? last.offset + Math.ceil(last.byteLength / alignment) * alignment : 0;
  const output = new Uint8Array(header.length + dataLength);
  output.set(header);
  for (const tensor of tensors) output.set(encodeTensor(tensor), header.length + tensor.offset);
  return output;
}

/** Writes a GGUF file, encoding one tensor at a time. */
export function writeGgufFile(path: string, input: GgufWriteInput): void {
  const { header, tensors, alignment } = prepare(input);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header);
    for (const tensor of tensors) {
      const bytes = encodeTensor(tensor);
      writeSync(fd, bytes);
      const padding = (alignment - (bytes.length % alignment)) % alignment;
      if (padding > 0) writeSync(fd, new Uint8Array(padding));
    }
  } finally {
    closeSync(fd);
  }
}
