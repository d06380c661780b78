import type { DType } from '@fairkv/core';
import { KvBlockAllocator } from '@fairkv/kernels';

/** One sequence: the KV of one (request, layer, local kv head) on this device. */
export interface KvSequence {
  blocks: number[];
  /** Tokens stored. */
  length: number;
  /** Offset of its block list in the current block table (valid after {@link KvSequences.blockTable}). */
  tableOffset: number;
}

/**
 * The host side of one device's paged KV cache (docs/kv-cache.md): sequences per (request, layer,
 * local kv head), their blocks from a {@link KvBlockAllocator}, and a packed block table rebuilt when
 * blocks change. Memory accounting is exact: `usedBytes` counts every allocated block.
 */
export class KvSequences {
  readonly allocator: KvBlockAllocator;
  readonly #sequences = new Map<string, Map<number, KvSequence>>();
  #table = new Int32Array(0);
  #dirty = true;

  constructor(options: { blockCount: number; blockSize: number; headDim: number; dtype: DType; device: number }) {
    this.allocator = new KvBlockAllocator(options);
  }

  static key(layer: number, localHead: number): number {
    return layer * 65536 + localHead;
  }

  /** Blocks needed to hold `tokens` tokens. */
  blocksFor(tokens: number): number {
    return Math.ceil(tokens / this.allocator.blockSize);
  }

  /** Creates a sequence with room for `tokens` tokens (its length starts at 0). */
  create(requestId: string, layer: number, localHead: number, tokens: number): KvSequence {
    let forRequest = this.#sequences.get(requestId);
    if (!forRequest) {
      forRequest = new Map();
      this.#sequences.set(requestId, forRequest);
    }
    const sequence: KvSequence = {
      blocks: this.allocator.allocate(this.blocksFor(tokens)),
      length: 0,
      tableOffset: -1,
    };
    forRequest.set(KvSequences.key(layer, localHead), sequence);
    this.#dirty = true;
    return sequence;
  }

  get(requestId: string, layer: number, localHead: number): KvSequence | undefined {
    return this.#sequences.get(requestId)?.get(KvSequences.key(layer, localHead));
  }

  /** Sequences of one request (key = layer * 65536 + local head). */
  sequencesOf(requestId: string): Map<number, KvSequence> | undefined {
    return this.#sequences.get(requestId);
  }

  /** Makes sure the sequence can take one more token, allocating a block when its last one is full. */
  reserveOne(sequence: KvSequence): void {
    if (sequence.length + 1 > sequence.blocks.length * this.allocator.blockSize) {
      sequence.blocks.push(...this.allocator.allocate(1));
      this.#dirty = true;
    }
  }

  /** Frees every block of a request. */
  release(requestId: string): void {
    const forRequest = this.#sequences.get(requestId);
    if (!forRequest) return;
    for (const sequence of forRequest.values()) this.allocator.free(sequence.blocks);
    this.#sequences.delete(requestId);
    this.#dirty = true;
  }

  /** Whether the block table changed since the last {@link blockTable} call. */
  get dirty(): boolean {
    return this.#dirty;
  }

  /** The packed block table (every sequence's blocks, in insertion order); updates `tableOffset`s. */
  blockTable(): Int32Array {
    if (!this.#dirty) return this.#table;
    let total = 0;
    for (const forRequest of this.#sequences.values())
      for (const sequence of forRequest.values()) total += sequence.blocks.length;
    const table = new Int32Array(Math.max(total, 1));
    let offset = 0;
    for (const forRequest of this.#sequences.values()) {
      for (const sequence of forRequest.values()) {
        sequence.tableOffset = offset;
        table.set(sequence.blocks, offset);
        offset += sequence.blocks.length;
      }
    }
    this.#table = table;
    this.#dirty = false;
    return table;
  }

  /** Bytes of the pool in use. */
  get usedBytes(): number {
    return this.allocator.usedBytes;
  }

  /** Bytes of allocated blocks per layer (`layerCount` entries). */
  bytesByLayer(layerCount: number): number[] {
    const bytes = new Array<number>(layerCount).fill(0);
    for (const forRequest of this.#sequences.values()) {
      for (const [key, sequence] of forRequest)
        bytes[Math.floor(key / 65536)]! += sequence.blocks.length * this.allocator.blockBytes;
    }
    return bytes;
  }

  /** Tokens stored per request (sum over its sequences). */
  tokensOf(requestId: string): number {
    let tokens = 0;
    for (const sequence of this.#sequences.get(requestId)?.values() ?? []) tokens += sequence.length;
    return tokens;
  }
}
