/**
 * Access to a loaded model's weights by canonical name (see weight-names.ts for names and the
 * `[outFeatures, inFeatures]` row-major layout), read lazily from the file and dequantised to
 * float32. Row and column ranges read only what they need, so a sharded executor can load just the
 * slices of the kv heads a device hosts.
 *
 * @packageDocumentation
 */
import { ConfigError } from '@fairkv/core';
import { checkRowRange, type StoredTensor } from './stored-tensor.js';

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
}

const COLUMN_CHUNK_BYTES = 8 << 20;

/** Reads a matrix once, in bounded chunks of rows, and copies out each column range as `[rows, count]`. */
async function readColumnRanges(
  tensor: StoredTensor,
  name: string,
  ranges: readonly { first: number; count: number }[],
): Promise<Float32Array[]> {
  if (tensor.shape.length !== 2)
    throw new RangeError(`${name}: column reads need a matrix, shape is [${tensor.shape.join(', ')}]`);
  const [rows, columns] = tensor.shape as [number, number];
  for (const range of ranges) checkRowRange({ name: `${name} columns`, shape: [columns] }, range.first, range.count);
  const outputs = ranges.map((range) => new Float32Array(rows * range.count));
  const bytesPerRow = Math.max(1, tensor.byteLength / Math.max(1, rows));
  const chunkRows = Math.max(1, Math.floor(COLUMN_CHUNK_BYTES / bytesPerRow));
  for (let first = 0; first < rows; first += chunkRows) {
    const count = Math.min(chunkRows, rows - first);
    const chunk = await tensor.readRows(first, count);
    ranges.forEach((range, index) => {
      for (let row = 0; row < count; row++) {
        const start = row * columns + range.first;
        outputs[index]!.set(chunk.subarray(start, start + range.count), (first + row) * range.count);
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
      const [block] = await readColumnRanges(resolve(name), name, [{ first: firstColumn, count: columnCount }]);
      return block!;
    },
    readColumnRanges: (name, ranges) => readColumnRanges(resolve(name), name, ranges),
  };
}
