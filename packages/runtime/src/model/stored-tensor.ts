/**
 * A tensor stored in a model file, read lazily: nothing is read until `read` or `readRows` is
 * called, and then only the bytes asked for. GGUF and safetensors readers both produce these.
 *
 * @packageDocumentation
 */
import { type ByteSource, openFileByteSource } from './byte-source.js';

/** A lazily read tensor of a GGUF or safetensors file. */
export interface StoredTensor {
  /** Name inside the file (`blk.0.attn_q.weight`, `model.layers.0.self_attn.q_proj.weight`). */
  readonly name: string;
  /**
   * Row-major shape, outermost dimension first (PyTorch order; GGUF `ne` reversed). A linear layer's
   * weight is `[outFeatures, inFeatures]`.
   */
  readonly shape: readonly number[];
  /** Element type as the file names it: a ggml type (`f32`, `q8_0`) or a safetensors dtype (`BF16`). */
  readonly storedType: string;
  /** Path of the file holding the data. */
  readonly file: string;
  /** Absolute byte offset of the data in that file. */
  readonly offset: number;
  /** Bytes of data. */
  readonly byteLength: number;
  /** Raw bytes as stored. */
  readBytes(): Promise<Uint8Array>;
  /** The whole tensor, dequantised to float32, row-major. */
  read(): Promise<Float32Array>;
  /**
   * Rows `firstRow .. firstRow + rowCount - 1` of the outermost dimension (each row has the product
   * of the other dimensions as elements), dequantised; reads only those bytes.
   */
  readRows(firstRow: number, rowCount: number): Promise<Float32Array>;
  /** The same rows' bytes exactly as stored, not decoded. */
  readRowBytes(firstRow: number, rowCount: number): Promise<Uint8Array>;
}

/** Product of a shape's dimensions (1 for a scalar). */
export function elementCountOf(shape: readonly number[]): number {
  let count = 1;
  for (const dimension of shape) count *= dimension;
  return count;
}

/** Checks a row range against a tensor's outermost dimension (a caller error, so a RangeError). */
export function checkRowRange(tensor: { name: string; shape: readonly number[] }, firstRow: number, rowCount: number) {
  const rows = tensor.shape[0] ?? 1;
  if (
    !Number.isInteger(firstRow) ||
    !Number.isInteger(rowCount) ||
    firstRow < 0 ||
    rowCount < 0 ||
    firstRow + rowCount > rows
  ) {
    throw new RangeError(`${tensor.name}: rows ${firstRow}..${firstRow + rowCount - 1} are outside 0..${rows - 1}`);
  }
}

/** What {@link lazyStoredTensor} needs to know about one tensor of a file. */
export interface LazyTensorLayout {
  name: string;
  shape: readonly number[];
  storedType: string;
  dataOffset: number;
  byteLength: number;
  elementCount: number;
  /** Elements and bytes of one row of the outermost dimension. */
  rowElements: number;
  rowBytes: number;
  /** Turns `count` elements of stored bytes into float32. */
  decode(bytes: Uint8Array, count: number): Float32Array;
}

/**
 * A {@link StoredTensor} over a byte source: positioned reads of exactly the bytes asked for, decoded
 * by the format's `decode`. The GGUF and safetensors readers differ only in the layout they pass.
 */
export function lazyStoredTensor(source: ByteSource, layout: LazyTensorLayout): StoredTensor {
  const field = `tensor ${layout.name} data`;
  const { dataOffset, byteLength, rowElements, rowBytes } = layout;
  const readRowBytes = (firstRow: number, rowCount: number): Promise<Uint8Array> => {
    checkRowRange(layout, firstRow, rowCount);
    return source.read(dataOffset + firstRow * rowBytes, rowCount * rowBytes, field);
  };
  return {
    name: layout.name,
    shape: layout.shape,
    storedType: layout.storedType,
    file: source.name,
    offset: dataOffset,
    byteLength,
    readBytes: () => source.read(dataOffset, byteLength, field),
    async read() {
      return layout.decode(await source.read(dataOffset, byteLength, field), layout.elementCount);
    },
    async readRows(firstRow, rowCount) {
      return layout.decode(await readRowBytes(firstRow, rowCount), rowCount * rowElements);
    },
    readRowBytes,
  };
}

/**
 * An open model file (GGUF or safetensors): its parsed header and its tensors as lazily read
 * {@link StoredTensor}s, by name. Each format supplies how a header entry becomes a tensor.
 */
export abstract class StoredTensorFile<
  Header extends { readonly tensors: readonly Info[] },
  Info extends { name: string },
> {
  private readonly byName: Map<string, StoredTensor>;

  protected constructor(
    readonly source: ByteSource,
    readonly header: Header,
    toTensor: (source: ByteSource, info: Info) => StoredTensor,
  ) {
    this.byName = new Map(header.tensors.map((info) => [info.name, toTensor(source, info)]));
  }

  /** Tensor names in file order. */
  tensorNames(): string[] {
    return this.header.tensors.map((info) => info.name);
  }

  /** A tensor by its name in the file, or undefined. */
  tensor(name: string): StoredTensor | undefined {
    return this.byName.get(name);
  }

  /** Closes the file. */
  close(): void {
    this.source.close();
  }
}

/**
 * The first two tensors whose data ranges overlap (in file order of their data), or undefined; both
 * readers reject such files.
 */
export function findDataOverlap<T extends { dataOffset: number; byteLength: number }>(
  tensors: readonly T[],
): { previous: T; current: T } | undefined {
  const byOffset = [...tensors].sort((a, b) => a.dataOffset - b.dataOffset);
  for (let index = 1; index < byOffset.length; index++) {
    const previous = byOffset[index - 1]!;
    const current = byOffset[index]!;
    if (previous.dataOffset + previous.byteLength > current.dataOffset) return { previous, current };
  }
  return undefined;
}

/** Opens `path` and parses it with `parse`; the file is closed again if parsing throws. */
export function parseOpenedFile<T>(path: string, parse: (source: ByteSource) => T): T {
  const source = openFileByteSource(path);
  try {
    return parse(source);
  } catch (error) {
    source.close();
    throw error;
  }
}
