/**
 * GGUF reader for versions 1, 2 and 3 (ggml's docs/gguf.md). Version 1 stores tensor and key-value
 * counts, string and array lengths and tensor dimensions as uint32; versions 2 and 3 as uint64
 * (version 3 only adds big-endian files, which fairkv refuses). Tensor data starts at the header end
 * rounded up to `general.alignment` (default 32). Every count, length, dimension and offset is
 * checked against the file size before it is used, so a malformed file gives a FormatError naming
 * the file, the field and the byte offset and nothing is read past the end.
 *
 * @packageDocumentation
 */

import { ByteCursor } from './byte-cursor.js';
import { type ByteSource, formatError } from './byte-source.js';
import { type GgmlTypeInfo, ggmlByteLength, ggmlTypeById } from './ggml-types.js';
import {
  GGUF_VALUE_TYPES,
  type GgufArrayValue,
  type GgufValue,
  type GgufValueType,
  minimumValueBytes,
} from './gguf-value.js';
import { findDataOverlap } from './stored-tensor.js';

/** `GGUF` in ASCII, read as a little-endian uint32. */
export const GGUF_MAGIC = 0x46554747;
/** Alignment of tensor data when `general.alignment` is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** Most dimensions a ggml tensor has (`GGML_MAX_DIMS`). */
export const GGUF_MAX_DIMENSIONS = 4;
/** Deepest nesting of arrays of arrays fairkv accepts. */
export const GGUF_MAX_ARRAY_NESTING = 8;

/** A GGUF format version fairkv reads. */
export type GgufVersion = 1 | 2 | 3;

/** One metadata key-value pair with where it sits in the file (for error messages). */
export interface GgufMetadataEntry {
  readonly key: string;
  readonly value: GgufValue;
  /** Byte offset of the value's type field. */
  readonly offset: number;
}

/** One tensor info record. */
export interface GgufTensorInfo {
  readonly name: string;
  /** ggml order: `dimensions[0]` (ne0) varies fastest. */
  readonly dimensions: readonly number[];
  /** Row-major shape, outermost first (`dimensions` reversed). */
  readonly shape: readonly number[];
  readonly type: GgmlTypeInfo;
  readonly elementCount: number;
  readonly byteLength: number;
  /** Absolute byte offset of the data in the file. */
  readonly dataOffset: number;
  /** Byte offset of this tensor info record (for error messages). */
  readonly infoOffset: number;
}

/** Everything in a GGUF file before the tensor data. */
export interface GgufHeader {
  readonly file: string;
  readonly version: GgufVersion;
  readonly metadata: ReadonlyMap<string, GgufMetadataEntry>;
  readonly tensors: readonly GgufTensorInfo[];
  readonly alignment: number;
  /** Absolute offset where tensor data begins. */
  readonly dataStart: number;
}

function readValue(cursor: ByteCursor, type: GgufValueType, width: 4 | 8, field: string, depth: number): GgufValue {
  switch (type) {
    case 'uint8':
      return { type, value: cursor.u8(field) };
    case 'int8':
      return { type, value: cursor.i8(field) };
    case 'uint16':
      return { type, value: cursor.u16(field) };
    case 'int16':
      return { type, value: cursor.i16(field) };
    case 'uint32':
      return { type, value: cursor.u32(field) };
    case 'int32':
      return { type, value: cursor.i32(field) };
    case 'float32':
      return { type, value: cursor.f32(field) };
    case 'float64':
      return { type, value: cursor.f64(field) };
    case 'uint64':
      return { type, value: cursor.u64(field) };
    case 'int64':
      return { type, value: cursor.i64(field) };
    case 'bool': {
      const offset = cursor.position;
      const byte = cursor.u8(field);
      if (byte > 1) cursor.fail(field, `bool must be 0 or 1 (got ${byte})`, offset);
      return { type, value: byte === 1 };
    }
    case 'string':
      return { type, value: cursor.string(width, field) };
    case 'array':
      return readArray(cursor, width, field, depth);
  }
}

function readValueType(cursor: ByteCursor, field: string): GgufValueType {
  const offset = cursor.position;
  const id = cursor.u32(field);
  const type = GGUF_VALUE_TYPES[id];
  if (type === undefined)
    cursor.fail(field, `unknown value type ${id} (expected 0..${GGUF_VALUE_TYPES.length - 1})`, offset);
  return type;
}

const NUMBER_ARRAY_READERS: Partial<
  Record<GgufValueType, [number, (view: DataView, offset: number) => number | bigint | boolean]>
> = {
  uint8: [1, (view, offset) => view.getUint8(offset)],
  int8: [1, (view, offset) => view.getInt8(offset)],
  uint16: [2, (view, offset) => view.getUint16(offset, true)],
  int16: [2, (view, offset) => view.getInt16(offset, true)],
  uint32: [4, (view, offset) => view.getUint32(offset, true)],
  int32: [4, (view, offset) => view.getInt32(offset, true)],
  float32: [4, (view, offset) => view.getFloat32(offset, true)],
  float64: [8, (view, offset) => view.getFloat64(offset, true)],
  uint64: [8, (view, offset) => view.getBigUint64(offset, true)],
  int64: [8, (view, offset) => view.getBigInt64(offset, true)],
};

function readArray(cursor: ByteCursor, width: 4 | 8, field: string, depth: number): GgufArrayValue {
  if (depth >= GGUF_MAX_ARRAY_NESTING) cursor.fail(field, `arrays nested deeper than ${GGUF_MAX_ARRAY_NESTING}`);
  const elementType = readValueType(cursor, `${field} (array element type)`);
  const limit = Math.floor(Math.max(0, cursor.remaining - width) / minimumValueBytes(elementType, width));
  const count = cursor.size(width, `${field} (array length)`, limit);
  const items: unknown[] = new Array(count);
  const fixed = NUMBER_ARRAY_READERS[elementType];
  if (fixed) {
    // fast path: one bounds-checked block for the whole array (tokenizer scores, token types)
    const [size, read] = fixed;
    const block = cursor.bytes(count * size, field);
    const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
    for (let index = 0; index < count; index++) items[index] = read(view, index * size);
  } else if (elementType === 'string') {
    for (let index = 0; index < count; index++) items[index] = cursor.string(width, field);
  } else {
    for (let index = 0; index < count; index++) {
      const item = readValue(cursor, elementType, width, `${field}[${index}]`, depth + 1);
      items[index] = item.type === 'array' ? item : item.value;
    }
  }
  return { type: 'array', elementType, value: items as GgufArrayValue['value'] };
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

function readAlignment(file: string, metadata: Map<string, GgufMetadataEntry>): number {
  const entry = metadata.get('general.alignment');
  if (!entry) return GGUF_DEFAULT_ALIGNMENT;
  const { value } = entry;
  const integerTypes = ['uint8', 'uint16', 'uint32', 'uint64', 'int8', 'int16', 'int32', 'int64'];
  if (!integerTypes.includes(value.type)) {
    throw formatError(file, 'general.alignment', entry.offset, `expected an unsigned integer, got a ${value.type}`);
  }
  const alignment = Number(value.value as number | bigint);
  if (!(alignment >= 1 && alignment <= 2 ** 30 && (alignment & (alignment - 1)) === 0)) {
    throw formatError(
      file,
      'general.alignment',
      entry.offset,
      `expected a power of two between 1 and 2^30, got ${alignment}`,
    );
  }
  return alignment;
}

/**
 * Parses the header (magic, version, metadata, tensor infos) of a GGUF file and checks every tensor
 * against the file size. Reads only the header bytes.
 * @throws FormatError naming the file, the field and the byte offset.
 */
export function parseGgufHeader(source: ByteSource): GgufHeader {
  const cursor = new ByteCursor(source);
  const file = source.name;
  const magic = cursor.u32('magic');
  if (magic !== GGUF_MAGIC)
    cursor.fail('magic', `expected "GGUF" (0x${GGUF_MAGIC.toString(16)}), got 0x${magic.toString(16)}`, 0);
  const rawVersion = cursor.u32('version');
  if (rawVersion >= 0x01000000 && rawVersion <= 0x03000000 && (rawVersion & 0xffffff) === 0) {
    cursor.fail('version', 'big-endian GGUF files are not supported', 4);
  }
  if (rawVersion < 1 || rawVersion > 3) cursor.fail('version', `expected 1, 2 or 3, got ${rawVersion}`, 4);
  const version = rawVersion as GgufVersion;
  const width: 4 | 8 = version === 1 ? 4 : 8;
  // the smallest tensor info: empty name, n_dims, type, offset; the smallest key-value: empty key, type, one byte
  const tensorCount = cursor.size(width, 'tensor_count', Math.floor(cursor.remaining / (width + 4 + 4 + 8)));
  const metadataCount = cursor.size(width, 'metadata_kv_count', Math.floor(cursor.remaining / (width + 4 + 1)));

  const metadata = new Map<string, GgufMetadataEntry>();
  for (let index = 0; index < metadataCount; index++) {
    const keyOffset = cursor.position;
    const key = cursor.string(width, `metadata[${index}].key`, 65535);
    if (metadata.has(key)) cursor.fail(`metadata key ${key}`, 'duplicate key', keyOffset);
    const offset = cursor.position;
    const field = key === '' ? `metadata[${index}]` : key;
    const type = readValueType(cursor, field);
    metadata.set(key, { key, value: readValue(cursor, type, width, field, 0), offset });
  }
  const alignment = readAlignment(file, metadata);

  const infos: {
    name: string;
    field: string;
    dimensions: number[];
    typeId: number;
    typeOffset: number;
    relative: bigint;
    infoOffset: number;
  }[] = [];
  const names = new Set<string>();
  for (let index = 0; index < tensorCount; index++) {
    const infoOffset = cursor.position;
    const name = cursor.string(width, `tensor_infos[${index}].name`, 65535);
    const field = name === '' ? `tensor_infos[${index}]` : `tensor ${name}`;
    if (names.has(name)) cursor.fail(field, 'duplicate tensor name', infoOffset);
    names.add(name);
    const dimensionOffset = cursor.position;
    const dimensionCount = cursor.u32(`${field} n_dimensions`);
    if (dimensionCount > GGUF_MAX_DIMENSIONS) {
      cursor.fail(
        `${field} n_dimensions`,
        `expected at most ${GGUF_MAX_DIMENSIONS}, got ${dimensionCount}`,
        dimensionOffset,
      );
    }
    const dimensions: number[] = [];
    for (let axis = 0; axis < dimensionCount; axis++) {
      dimensions.push(cursor.size(width, `${field} dimensions[${axis}]`, Number.MAX_SAFE_INTEGER));
    }
    const typeOffset = cursor.position;
    const typeId = cursor.u32(`${field} type`);
    const relative = cursor.u64(`${field} offset`);
    infos.push({ name, field, dimensions, typeId, typeOffset, relative, infoOffset });
  }
  const dataStart = alignUp(cursor.position, alignment);
  if (tensorCount > 0 && dataStart > source.size) {
    cursor.fail(
      'tensor data',
      `starts at ${dataStart}, past the end of the file (size ${source.size})`,
      cursor.position,
    );
  }

  const tensors = infos.map((info) => {
    const field = info.field;
    const type = ggmlTypeById(info.typeId);
    if (!type) throw formatError(file, `${field} type`, info.typeOffset, `unknown ggml type ${info.typeId}`);
    let elementCount = 1;
    for (const dimension of info.dimensions) {
      elementCount *= dimension;
      if (!Number.isSafeInteger(elementCount)) {
        throw formatError(
          file,
          `${field} dimensions`,
          info.infoOffset,
          `element count overflows (${info.dimensions.join(' x ')})`,
        );
      }
    }
    const innermost = info.dimensions[0] ?? 1;
    if (innermost % type.blockSize !== 0) {
      throw formatError(
        file,
        `${field} dimensions[0]`,
        info.infoOffset,
        `${innermost} is not a multiple of the ${type.name} block size ${type.blockSize}`,
      );
    }
    const byteLength = ggmlByteLength(type, elementCount);
    if (info.relative % BigInt(alignment) !== 0n) {
      throw formatError(
        file,
        `${field} offset`,
        info.typeOffset + 4,
        `${info.relative} is not a multiple of the alignment ${alignment}`,
      );
    }
    if (info.relative > BigInt(source.size) || dataStart + Number(info.relative) + byteLength > source.size) {
      throw formatError(
        file,
        `${field} data`,
        info.typeOffset + 4,
        `${byteLength} bytes at ${dataStart} + ${info.relative} run past the end of the file (size ${source.size})`,
      );
    }
    const shape = [...info.dimensions].reverse();
    return {
      name: info.name,
      dimensions: info.dimensions,
      shape,
      type,
      elementCount,
      byteLength,
      dataOffset: dataStart + Number(info.relative),
      infoOffset: info.infoOffset,
    };
  });
  const overlap = findDataOverlap(tensors);
  if (overlap) {
    const { previous, current } = overlap;
    throw formatError(
      file,
      `tensor ${current.name} offset`,
      current.infoOffset,
      `its data overlaps tensor ${previous.name}`,
    );
  }
  return { file, version, metadata, tensors, alignment, dataStart };
}
