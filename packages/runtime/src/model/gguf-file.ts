/**
 * An open GGUF file: the parsed header and its tensors as lazily read {@link StoredTensor}s
 * (positioned reads of exactly the bytes asked for, dequantised to float32).
 *
 * @packageDocumentation
 */
import type { ByteSource } from './byte-source.js';
import { dequantizeGgml, ggmlByteLength } from './ggml-types.js';
import type { GgufMetadataEntry } from './gguf-reader.js';
import { type GgufHeader, type GgufTensorInfo, type GgufVersion, parseGgufHeader } from './gguf-reader.js';
import { lazyStoredTensor, parseOpenedFile, type StoredTensor, StoredTensorFile } from './stored-tensor.js';

/** A GGUF tensor as a lazily read {@link StoredTensor}. */
export function ggufStoredTensor(source: ByteSource, info: GgufTensorInfo): StoredTensor {
  const rowElements = info.shape.length === 0 ? 1 : info.elementCount / (info.shape[0] || 1);
  return lazyStoredTensor(source, {
    name: info.name,
    shape: info.shape,
    storedType: info.type.name,
    dataOffset: info.dataOffset,
    byteLength: info.byteLength,
    elementCount: info.elementCount,
    rowElements,
    rowBytes: ggmlByteLength(info.type, rowElements),
    decode: (bytes, count) => dequantizeGgml(info.type, bytes, count),
  });
}

/** An open GGUF file: its header, and its tensors read lazily by name. */
export class GgufFile extends StoredTensorFile<GgufHeader, GgufTensorInfo> {
  private constructor(source: ByteSource, header: GgufHeader) {
    super(source, header, ggufStoredTensor);
  }

  /** Opens and parses a GGUF file (header only; tensor data is read on demand). */
  static open(path: string): GgufFile {
    return parseOpenedFile(path, (source) => GgufFile.fromSource(source));
  }

  /** Parses GGUF bytes from any ByteSource (the source stays owned by the caller until `close`). */
  static fromSource(source: ByteSource): GgufFile {
    return new GgufFile(source, parseGgufHeader(source));
  }

  get version(): GgufVersion {
    return this.header.version;
  }

  get metadata(): ReadonlyMap<string, GgufMetadataEntry> {
    return this.header.metadata;
  }
}
