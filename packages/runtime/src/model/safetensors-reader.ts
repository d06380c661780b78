/**
 * safetensors reader (huggingface/safetensors, "Format"): an 8-byte little-endian header length N,
 * N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then
 * the data, offsets relative to its start. The header is limited to 100 MB as in the reference
 * implementation; every dtype, shape and offset is checked against the file size before use, and
 * problems give a FormatError naming the file, the field and the byte offset. JSON is only parsed,
 * never evaluated.
 *
 * @packageDocumentation
 */
import { UnsupportedError } from '@fairkv/core';
import { type ByteSource, formatError } from './byte-source.js';
import { decodeBfloat16Array, decodeFloat16Array } from './float16.js';
import {
  findDataOverlap,
  lazyStoredTensor,
  parseOpenedFile,
  type StoredTensor,
  StoredTensorFile,
} from './stored-tensor.js';

/** Largest JSON header accepted (the reference implementation's `MAX_HEADER_SIZE`). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

/** Bytes per element of every safetensors dtype. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** dtypes {@link SafetensorsFile} decodes to float32. */
export const READABLE_SAFETENSORS_DTYPES: readonly string[] = ['F32', 'F16', 'BF16', 'F64'];

/** One tensor entry of a safetensors header. */
export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly elementCount: number;
  /** Absolute byte offset of the data in the file. */
  readonly dataOffset: number;
  readonly byteLength: number;
}

/** A parsed safetensors header. */
export interface SafetensorsHeader {
  readonly file: string;
  /** Absolute offset of the data section (8 + header length). */
  readonly dataStart: number;
  readonly tensors: readonly SafetensorsTensorInfo[];
  /** The free-form `__metadata__` string map (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses and checks a safetensors header. Reads only the first 8 + N bytes.
 * @throws FormatError naming the file, the field (a JSON path into the header) and the byte offset.
 */
export function parseSafetensorsHeader(source: ByteSource): SafetensorsHeader {
  const file = source.name;
  const lengthBytes = source.readSync(0, 8, 'header length');
  const headerLength = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw formatError(
      file,
      'header length',
      0,
      `${headerLength} exceeds the limit of ${SAFETENSORS_MAX_HEADER_BYTES} bytes`,
    );
  }
  if (headerLength + 8n > BigInt(source.size)) {
    throw formatError(
      file,
      'header length',
      0,
      `${headerLength} bytes of header do not fit in a file of ${source.size} bytes`,
    );
  }
  const dataStart = 8 + Number(headerLength);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(source.readSync(8, Number(headerLength), 'header'));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw formatError(file, 'header', 8, `not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(json)) throw formatError(file, 'header', 8, 'expected a JSON object');
  const dataLength = source.size - dataStart;
  const tensors: SafetensorsTensorInfo[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(json)) {
    const field = `$[${JSON.stringify(name)}]`;
    if (name === '__metadata__') {
      if (!isPlainObject(entry) || !Object.values(entry).every((value) => typeof value === 'string')) {
        throw formatError(file, field, 8, 'expected an object of strings');
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    if (!isPlainObject(entry))
      throw formatError(file, field, 8, 'expected an object with dtype, shape and data_offsets');
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string' || !Object.hasOwn(SAFETENSORS_DTYPE_BYTES, dtype)) {
      throw formatError(
        file,
        `${field}.dtype`,
        8,
        `expected one of ${Object.keys(SAFETENSORS_DTYPE_BYTES).join(', ')}, got ${JSON.stringify(dtype)}`,
      );
    }
    if (!Array.isArray(shape) || !shape.every((dimension) => Number.isSafeInteger(dimension) && dimension >= 0)) {
      throw formatError(
        file,
        `${field}.shape`,
        8,
        `expected an array of non-negative integers, got ${JSON.stringify(shape)}`,
      );
    }
    let elementCount = 1;
    for (const dimension of shape as number[]) elementCount *= dimension;
    if (!Number.isSafeInteger(elementCount)) throw formatError(file, `${field}.shape`, 8, 'element count overflows');
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((offset) => Number.isSafeInteger(offset) && offset >= 0) ||
      offsets[0] > offsets[1]
    ) {
      throw formatError(
        file,
        `${field}.data_offsets`,
        8,
        `expected [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) {
      throw formatError(
        file,
        `${field}.data_offsets`,
        dataStart + begin,
        `end ${end} is past the data section of ${dataLength} bytes`,
      );
    }
    const byteLength = elementCount * SAFETENSORS_DTYPE_BYTES[dtype]!;
    if (end - begin !== byteLength) {
      throw formatError(
        file,
        `${field}.data_offsets`,
        dataStart + begin,
        `covers ${end - begin} bytes but shape ${JSON.stringify(shape)} of ${dtype} needs ${byteLength}`,
      );
    }
    tensors.push({ name, dtype, shape: shape as number[], elementCount, dataOffset: dataStart + begin, byteLength });
  }
  const overlap = findDataOverlap(tensors);
  if (overlap) {
    const { previous, current } = overlap;
    throw formatError(
      file,
      `$[${JSON.stringify(current.name)}].data_offsets`,
      current.dataOffset,
      `overlaps tensor ${previous.name}`,
    );
  }
  return { file, dataStart, tensors, metadata };
}

/** Decodes little-endian safetensors data of a float dtype to float32. */
export function decodeSafetensorsData(dtype: string, bytes: Uint8Array, elementCount: number): Float32Array {
  const output = new Float32Array(elementCount);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32':
      for (let index = 0; index < elementCount; index++) output[index] = view.getFloat32(4 * index, true);
      return output;
    case 'F64':
      for (let index = 0; index < elementCount; index++) output[index] = view.getFloat64(8 * index, true);
      return output;
    case 'F16':
      decodeFloat16Array(bytes, 0, elementCount, output);
      return output;
    case 'BF16':
      decodeBfloat16Array(bytes, 0, elementCount, output);
      return output;
    default:
      throw new UnsupportedError(
        `safetensors dtype ${dtype} cannot be read as floats: expected one of ${READABLE_SAFETENSORS_DTYPES.join(', ')}`,
      );
  }
}

/** A safetensors tensor as a lazily read {@link StoredTensor}. */
export function safetensorsStoredTensor(source: ByteSource, info: SafetensorsTensorInfo): StoredTensor {
  const rows = info.shape.length === 0 ? 1 : info.shape[0]!;
  const rowElements = rows === 0 ? 0 : info.elementCount / rows;
  return lazyStoredTensor(source, {
    name: info.name,
    shape: info.shape,
    storedType: info.dtype,
    dataOffset: info.dataOffset,
    byteLength: info.byteLength,
    elementCount: info.elementCount,
    rowElements,
    rowBytes: rowElements * SAFETENSORS_DTYPE_BYTES[info.dtype]!,
    decode: (bytes, count) => decodeSafetensorsData(info.dtype, bytes, count),
  });
}

/** An open safetensors file with its tensors read lazily by name. */
export class SafetensorsFile extends StoredTensorFile<SafetensorsHeader, SafetensorsTensorInfo> {
  private constructor(source: ByteSource, header: SafetensorsHeader) {
    super(source, header, safetensorsStoredTensor);
  }

  /** Opens a file and parses its header (tensor data is read on demand). */
  static open(path: string): SafetensorsFile {
    return parseOpenedFile(path, (source) => SafetensorsFile.fromSource(source));
  }

  /** Parses safetensors bytes from any ByteSource. */
  static fromSource(source: ByteSource): SafetensorsFile {
    return new SafetensorsFile(source, parseSafetensorsHeader(source));
  }
}
