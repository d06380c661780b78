/**
 * Access to a loaded model's weights by canonical name (see weight-names.ts for names and the
 * `[outFeatures, inFeatures]` row-major layout), read lazily from the file and dequantised to
 * float32. Row and column ranges read only what they need, so a sharded executor can load just the
 * slices of the kv heads a device hosts.
 *
 * @packageDocumentation
 */
import { ConfigError, UnsupportedError } from '@fairkv/core';
import { checkRowRange, type StoredTensor } from './stored-tensor.js';

/**
 * The 16-bit float type a stored type is, if it is one: GGUF `f16` / `bf16`, safetensors `F16` /
 * `BF16`. Weights of these types can go to a device buffer of the same dtype as raw bit patterns.
 */
export function halfStoredType(storedType: string): 'f16' | 'bf16' | undefined {
  const lower = storedType.toLowerCase();
  return lower === 'f16' || lower === 'bf16' ? lower : undefined;
}

/** Where a canonical weight lives. */
export interface WeightInfo {
  /** Canonical name (`layers.0.attention.wq`). */
  readonly name: string;
  /** Row-major shape, `[outFeatures, inFeatures]` for matrices. */
  readonly shape: readonly number[];
  /** Name inside the file (for a tied output: the embedding's). */
  readonly storedName: string;
  /** Element type as stored (`f32`, `q8_0`, `BF16`, ...). */
  readonly storedType: string;
  /** File holding it. */
  readonly file: string;
  /** Bytes as stored. */
  readonly byteLength: number;
  /** For `output` of a model with tied embeddings: `tokenEmbedding`. */
  readonly tiedTo?: string;
}

/** Reads of a model's weights by canonical name. */
export interface ModelWeights {
  /** Canonical names, embedding first, layer by layer, head last. */
  readonly names: readonly string[];
  has(name: string): boolean;
  /** @throws ConfigError for an unknown name. */
  info(name: string): WeightInfo;
  /** The whole weight as float32, row-major. */
  read(name: string): Promise<Float32Array>;
  /**
   * The weight's bytes exactly as stored (`info(name).storedType`, little-endian), for backends that
   * upload f16/bf16 or quantised blocks without a float32 detour.
   */
  readStoredBytes(name: string): Promise<Uint8Array>;
  /** Rows `firstRow ..` of a weight (`[rowCount, inFeatures]`): reads only those bytes. */
  readRows(name: string, firstRow: number, rowCount: number): Promise<Float32Array>;
  /**
   * Columns `firstColumn ..` of a matrix as a `[rows, columnCount]` row-major array (e.g. the `wo`
   * columns of one head). Reads the matrix in bounded chunks of rows.
   */
  readColumns(name: string, firstColumn: number, columnCount: number): Promise<Float32Array>;
  /**
   * Several column ranges of a matrix from one pass over it (a device's `wo` columns of all its kv
   * heads), each as a `[rows, count]` row-major array, in the order given.
   */
  readColumnRanges(name: string, ranges: readonly { first: number; count: number }[]): Promise<Float32Array[]>;
  /**
   * {@link readRows} of an f16 or bf16 weight as its raw 16-bit patterns (see {@link halfStoredType}), for
   * a device buffer of that dtype: no float32 detour, no rounding.
   * @throws UnsupportedError for a weight stored in another type.
   */
  readRowBits(name: string, firstRow: number, rowCount: number): Promise<Uint16Array>;
  /** {@link readColumnRanges} of an f16 or bf16 weight as raw 16-bit patterns. @throws UnsupportedError likewise. */
  readColumnBitRanges(name: string, ranges: readonly { first: number; count: number }[]): Promise<Uint16Array[]>;
}

const COLUMN_CHUNK_BYTES = 8 << 20;

/** 16-bit patterns of stored little-endian bytes (a view; a copy when the bytes are not 2-byte aligned). */
export function storedBits(bytes: Uint8Array): Uint16Array {
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  return new Uint16Array(bytes.slice().buffer);
}

/** The tensor's rows as raw 16-bit patterns. @throws UnsupportedError when it is not stored as f16 or bf16. */
async function readRowBits(tensor: StoredTensor, name: string, firstRow: number, rowCount: number) {
  if (!halfStoredType(tensor.storedType))
    throw new UnsupportedError(`${name}: stored as ${tensor.storedType}; raw 16-bit reads need f16 or bf16`);
  return storedBits(await tensor.readRowBytes(firstRow, rowCount));
}

/**
 * Reads a matrix once, in bounded chunks of rows, and copies out each column range as `[rows, count]`
 * (all columns: the rows as read).
 */
async function readColumnRanges<A extends Float32Array | Uint16Array>(
  tensor: StoredTensor,
  name: string,
  ranges: readonly { first: number; count: number }[],
  readRows: (first: number, count: number) => Promise<A>,
  allocate: (length: number) => A,
): Promise<A[]> {
  if (tensor.shape.length !== 2)
    throw new RangeError(`${name}: column reads need a matrix, shape is [${tensor.shape.join(', ')}]`);
  const [rows, columns] = tensor.shape as [number, number];
  for (const range of ranges) checkRowRange({ name: `${name} columns`, shape: [columns] }, range.first, range.count);
  // every column (a device holding the whole matrix): one read, no copies
  if (ranges.length === 1 && ranges[0]!.first === 0 && ranges[0]!.count === columns) return [await readRows(0, rows)];
  const outputs = ranges.map((range) => allocate(rows * range.count));
  const bytesPerRow = Math.max(1, tensor.byteLength / Math.max(1, rows));
  const chunkRows = Math.max(1, Math.floor(COLUMN_CHUNK_BYTES / bytesPerRow));
  for (let first = 0; first < rows; first += chunkRows) {
    const count = Math.min(chunkRows, rows - first);
    const chunk = await readRows(first, count);
    ranges.forEach((range, index) => {
      for (let row = 0; row < count; row++) {
        const start = row * columns + range.first;
        outputs[index]!.set(chunk.subarray(start, start + range.count) as never, (first + row) * range.count);
      }
    });
  }
  return outputs;
}

/** Builds {@link ModelWeights} over stored tensors keyed by canonical name. */
export function createModelWeights(tensors: ReadonlyMap<string, StoredTensor>, tiedOutput: boolean): ModelWeights {
  const names = [...tensors.keys()];
  if (tiedOutput && !names.includes('output')) names.push('output');
  const resolve = (name: string): StoredTensor => {
    const tensor = tensors.get(name === 'output' && tiedOutput ? 'tokenEmbedding' : name);
    if (!tensor) {
      throw new ConfigError(
        `unknown weight "${name}": expected a canonical name such as tokenEmbedding or layers.0.attention.wq`,
        [{ path: '$.name', message: `unknown weight "${name}"` }],
      );
    }
    return tensor;
  };
  const floatColumnRanges = (name: string, ranges: readonly { first: number; count: number }[]) => {
    const tensor = resolve(name);
    return readColumnRanges(
      tensor,
      name,
      ranges,
      (first, count) => tensor.readRows(first, count),
      (length) => new Float32Array(length),
    );
  };
  return {
    names,
    has: (name) => names.includes(name),
    info(name) {
      const tensor = resolve(name);
      return {
        name,
        shape: tensor.shape,
        storedName: tensor.name,
        storedType: tensor.storedType,
        file: tensor.file,
        byteLength: tensor.byteLength,
        ...(name === 'output' && tiedOutput ? { tiedTo: 'tokenEmbedding' } : {}),
      };
    },
    read: (name) => resolve(name).read(),
    readStoredBytes: (name) => resolve(name).readBytes(),
    readRows: (name, firstRow, rowCount) => resolve(name).readRows(firstRow, rowCount),
    async readColumns(name, firstColumn, columnCount) {
      const [block] = await floatColumnRanges(name, [{ first: firstColumn, count: columnCount }]);
      return block!;
    },
    readColumnRanges: floatColumnRanges,
    readRowBits: (name, firstRow, rowCount) => readRowBits(resolve(name), name, firstRow, rowCount),
    readColumnBitRanges(name, ranges) {
      const tensor = resolve(name);
      return readColumnRanges(
        tensor,
        name,
        ranges,
        (first, count) => readRowBits(tensor, name, first, count),
        (length) => new Uint16Array(length),
      );
    },
  };
}
