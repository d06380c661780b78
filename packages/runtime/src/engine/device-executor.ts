import { type ModelConfig, queryGroupSize, UnsupportedError } from '@fairkv/core';
import {
  type Backend,
  type BackendProfile,
  DECODE_PAIR_FIELDS,
  type DeviceBuffer,
  KV_APPEND_ENTRY_FIELDS,
} from '@fairkv/kernels';
import type { DeviceShard } from './device-shards.js';
import { type DeviceStats, LayerTimer } from './device-stats.js';
import { type KvSequence, KvSequences } from './kv-sequences.js';
import {
  type HeadObservation,
  type OnLayerObserved,
  ownedHeadObservations,
  type PrefillObservation,
} from './prefill-observation.js';
import { type RowSampling, ShardForward, type ShardForwardOptions } from './shard-forward.js';

export type { PrefillObservation } from './prefill-observation.js';
export type { RowSampling } from './shard-forward.js';

/** Settings of one device's executor: its forward pass plus its KV pool. */
export interface DeviceExecutorOptions extends ShardForwardOptions {
  /** KV pool size in blocks and tokens per block (default 16). */
  kvBlockCount: number;
  kvBlockSize?: number;
  /** Fill the KV pool with this value at creation (benchmarks that admit requests without prefill). */
  kvFill?: number;
  /**
   * Decode steps as graph steps of the backend where it has them (`Backend.beginGraphStep`: the CUDA
   * backend replays a step's kernels as CUDA graphs) and the device is alone or its communicator
   * enqueues its all-reduces through the graph steps (`Communicator.graphSteps`).
   * Default true; results are the same either way.
   */
  graphSteps?: boolean;
}

let nextGraphName = 0;

/** One row of a decode step. */
export interface DecodeRow {
  requestId: string;
  token: number;
  position: number;
}

/**
 * Runs one device's part of the Llama forward pass from its shard of a placement plan: QKV of the kv
 * heads it hosts, ragged decode attention over the (request, head) pairs it serves, the partial
 * O-projection, its MLP slice, and the two all-reduces per layer through the {@link Communicator}.
 * Every device keeps the replicated residual stream; the logits device adds the final norm and LM head.
 */
export class DeviceExecutor {
  readonly shard: DeviceShard;
  readonly kv: KvSequences;
  readonly timer: LayerTimer;
  readonly #forward: ShardForward;
  readonly #backend: Backend;
  readonly #config: ModelConfig;
  readonly #group: number;
  readonly #pool: DeviceBuffer;
  readonly #retained = new Map<
    string,
    { key: DeviceBuffer<'f32'>[]; value: DeviceBuffer<'f32'>[]; tokenCount: number }
  >();
  /** Local heads this device serves, per request and layer. */
  readonly #served = new Map<string, boolean[][]>();
  /** The block table last uploaded, and where to. */
  #uploaded: { table?: Int32Array; buffer?: DeviceBuffer<'i32'> } = {};
  /** Whether decode steps are graph steps (see {@link DeviceExecutorOptions.graphSteps}). */
  readonly #graphSteps: boolean;
  /** This executor's prefix of graph step names (executors sharing a backend keep their own graphs). */
  readonly #graphName = `decode-${nextGraphName++}`;
  /**
   * A 16-bit engine's type: the prompt's attention takes its products in it (`productRounding`: Q, K, V and
   * the probabilities, as FlashAttention's 16-bit kernels do), so K and V are the values decode reads from
   * the pool, and GPUs run the prefill on 16-bit tensor cores.
   */
  readonly #productRounding: 'bf16' | 'f16' | undefined;

  constructor(options: DeviceExecutorOptions) {
    const { backend, config, shard } = options;
    const dtype = options.dtype ?? 'f32';
    this.#productRounding = dtype === 'f32' ? undefined : dtype;
    this.#forward = new ShardForward(options);
    this.#backend = backend;
    this.#config = config;
    this.shard = shard;
    this.#group = queryGroupSize(config);
    const blockSize = options.kvBlockSize ?? 16;
    this.kv = new KvSequences({
      blockCount: options.kvBlockCount,
      blockSize,
      headDim: config.headDim,
      dtype,
      device: shard.device,
    });
    this.#pool = backend.createBuffer({
      dtype,
      elementCount: options.kvBlockCount * 2 * blockSize * config.headDim,
      label: 'kv-pool',
    });
    if (options.kvFill !== undefined) backend.fill(this.#pool, options.kvFill);
    this.timer = new LayerTimer(config.layerCount);
    this.#graphSteps =
      (options.graphSteps ?? true) &&
      (options.communicator.size === 1 || options.communicator.graphSteps === true) &&
      backend.beginGraphStep !== undefined &&
      backend.endGraphStep !== undefined;
  }

  /**
   * Prefills one prompt: full causal attention for every hosted head, observation data for the heads
   * this device owns, and the prompt's K/V kept aside until {@link commit} stores what the policy keeps.
   * With `onLayer`, each layer's observation goes to it as soon as its downloads complete (while the
   * device computes later layers), and the result's `layers` is empty.
   */
  async prefill(
    requestId: string,
    tokens: Int32Array,
    needs: { windowRows: number; accumulated: boolean; keyNorms: boolean },
    onLayer?: OnLayerObserved,
  ): Promise<PrefillObservation> {
    const b = this.#backend;
    const { headDim, layerCount } = this.#config;
    const count = tokens.length;
    const { x, positions } = this.#forward.embed(tokens);
    b.upload(
      positions,
      Int32Array.from({ length: count }, (_, i) => i),
    );
    const windowRows = Math.min(needs.windowRows, count);
    // each layer's observation downloads are enqueued with the layer and awaited after the last one, so
    // the device goes on with the next layers while the host waits for and reduces them
    const observed: Promise<HeadObservation[]>[] = [];
    const retained = { key: [] as DeviceBuffer<'f32'>[], value: [] as DeviceBuffer<'f32'>[], tokenCount: count };
    for (let l = 0; l < layerCount; l++) {
      const started = performance.now();
      const { q, k, v, qWidth, local } = this.#forward.projectQkv(l, x, positions, count);
      const heads = this.shard.layers[l]!;
      const owned = heads.map((head) => head.prefillOwner);
      const copied = owned.some((isOwner) => !isOwner);
      const width = this.#group * headDim;
      // with copied heads, one zero row of a head's width past the prompt's rows (see below)
      const attention = this.#forward.buffer('attention', 'f32', count * Math.max(qWidth, 1) + (copied ? width : 0));
      // the window as its column sums: what every window-reading policy accepts (ObservationRequirements),
      // 1/windowRows of the rows' bytes to download and reduce
      const windowSums =
        windowRows > 0 && local > 0
          ? this.#forward.buffer('window-sums', 'f32', local * this.#group * count)
          : undefined;
      // H2O's column sums come from the kernel: no [T][T] window of the whole prompt
      const accumulated =
        needs.accumulated && local > 0
          ? this.#forward.buffer('accumulated-scores', 'f32', local * this.#group * count)
          : undefined;
      if (local > 0) {
        b.run('prefill-attention', {
          query: q,
          key: k,
          value: v,
          output: attention,
          ...(windowSums ? { windowScoreSums: windowSums } : {}),
          ...(accumulated ? { accumulatedScores: accumulated } : {}),
          tokenCount: count,
          queryHeadCount: local * this.#group,
          kvHeadCount: local,
          headDim,
          windowSize: windowSums ? windowRows : 0,
          scale: 1 / Math.sqrt(headDim),
          ...(this.#productRounding ? { productRounding: this.#productRounding } : {}),
        });
      }
      // a copied head's prompt output is contributed once, by its first replica: the output, read as
      // [token][local head] rows of one head group's width, is gathered on the device with every row of a
      // head this device does not own taken from the zero row (no round trip through the host)
      const projected = copied ? this.#ownedRows(attention, owned, count, width) : attention;
      const layerObservation = this.#observe(l, windowSums, accumulated, k, owned, count, needs).then((heads) => {
        onLayer?.(l, heads);
        return heads;
      });
      layerObservation.catch(() => {}); // awaited below; a failure must not surface as unhandled first
      observed.push(layerObservation);
      const key = b.createBuffer({
        dtype: 'f32',
        elementCount: Math.max(count * local * headDim, 1),
        label: `prefill-k.${l}`,
      });
      const value = b.createBuffer({
        dtype: 'f32',
        elementCount: Math.max(count * local * headDim, 1),
        label: `prefill-v.${l}`,
      });
      if (local > 0) {
        b.copy({
          source: k,
          sourceOffset: 0,
          destination: key,
          destinationOffset: 0,
          elementCount: count * local * headDim,
        });
        b.copy({
          source: v,
          sourceOffset: 0,
          destination: value,
          destinationOffset: 0,
          elementCount: count * local * headDim,
        });
      }
      retained.key.push(key);
      retained.value.push(value);
      this.timer.add(l, performance.now() - started);
      await this.#forward.attentionOutput(l, projected, x, count, qWidth);
      const mlpStarted = performance.now();
      await this.#forward.mlp(l, x, count);
      this.timer.add(l, performance.now() - mlpStarted);
    }
    this.#retained.set(requestId, retained);
    const logits = this.#forward.logits(x, 1, count - 1);
    const layers = await Promise.all(observed);
    const observation: PrefillObservation = { layers: onLayer ? [] : layers };
    if (logits) observation.logits = await b.download(logits, { elementCount: this.#config.vocabSize });
    return observation;
  }

  /**
   * `attention` (`[count][owned.length]` rows of `width`, then room for one more row) with the rows of heads
   * this device does not own replaced by zeros: an `embedding-gather` of its own rows, the others from a
   * zero row written past the prompt's. Returns the gathered buffer.
   */
  #ownedRows(attention: DeviceBuffer<'f32'>, owned: boolean[], count: number, width: number): DeviceBuffer<'f32'> {
    const b = this.#backend;
    const local = owned.length;
    const rows = count * local;
    b.fill(attention, 0, { elementOffset: rows * width, elementCount: width });
    const source = new Int32Array(rows);
    for (let t = 0; t < count; t++)
      for (let i = 0; i < local; i++) source[t * local + i] = owned[i] ? t * local + i : rows;
    const sourceRows = this.#forward.buffer('owned-rows', 'i32', rows);
    b.upload(sourceRows, source);
    const gathered = this.#forward.buffer('attention-owned', 'f32', rows * width);
    b.run('embedding-gather', {
      table: attention,
      tokens: sourceRows,
      output: gathered,
      rowCount: rows,
      vocabSize: rows + 1,
      hiddenSize: width,
    });
    return gathered;
  }

  /**
   * Layer `l`'s observation for the heads this device owns. Its downloads are enqueued at the call, in
   * queue order, so the layer's buffers may be overwritten by work enqueued after it.
   */
  async #observe(
    l: number,
    windowSums: DeviceBuffer<'f32'> | undefined,
    accumulated: DeviceBuffer<'f32'> | undefined,
    k: DeviceBuffer<'f32'>,
    owned: boolean[],
    count: number,
    needs: { windowRows: number; accumulated: boolean; keyNorms: boolean },
  ): Promise<HeadObservation[]> {
    const heads = this.shard.layers[l]!;
    const { headDim } = this.#config;
    const local = heads.length;
    const [sums, columnSums, keys] = await Promise.all([
      windowSums ? this.#backend.download(windowSums, { elementCount: local * this.#group * count }) : undefined,
      accumulated ? this.#backend.download(accumulated, { elementCount: local * this.#group * count }) : undefined,
      needs.keyNorms && local > 0 ? this.#backend.download(k, { elementCount: count * local * headDim }) : undefined,
    ]);
    return ownedHeadObservations({
      heads,
      owned,
      groupSize: this.#group,
      headDim,
      tokenCount: count,
      needs,
      ...(sums ? { windowSums: sums } : {}),
      ...(columnSums ? { accumulated: columnSums } : {}),
      ...(keys ? { keys } : {}),
    });
  }

  /**
   * Stores what the policy kept for the heads this device serves: `kept[l][localHead]` is the sorted
   * kept token indices, or null when another replica serves that head for this request. Reserves
   * room for `reserveTokens` decode tokens per sequence and frees the prompt's K/V.
   */
  async commit(requestId: string, kept: (Int32Array | null)[][], reserveTokens: number): Promise<void> {
    const retained = this.#retained.get(requestId);
    if (!retained) throw new Error(`request ${requestId} was not prefilled on device ${this.shard.device}`);
    const b = this.#backend;
    const served: boolean[][] = [];
    try {
      for (let l = 0; l < this.#config.layerCount; l++) {
        const local = this.#forward.localHeads(l);
        served.push(kept[l]!.map((indices) => indices !== null));
        const created: { head: number; indices: Int32Array; sequence: KvSequence }[] = [];
        kept[l]!.forEach((indices, head) => {
          if (!indices) return;
          const sequence = this.kv.create(requestId, l, head, indices.length + reserveTokens);
          sequence.length = indices.length;
          created.push({ head, indices, sequence });
        });
        if (created.length === 0) continue;
        const table = this.#uploadBlockTable();
        const entries: number[] = [];
        for (const { head, indices, sequence } of created) {
          for (let rank = 0; rank < indices.length; rank++)
            entries.push(indices[rank]!, head, rank, sequence.tableOffset);
        }
        this.#appendEntries(table, entries, retained.key[l]!, retained.value[l]!, retained.tokenCount, local);
      }
    } catch (error) {
      this.kv.release(requestId);
      throw error;
    } finally {
      for (const buffer of [...retained.key, ...retained.value]) b.disposeBuffer(buffer);
      this.#retained.delete(requestId);
    }
    this.#served.set(requestId, served);
  }

  /**
   * Admits a request without a prefill, for decode benchmarks: `lengths[l][localHead]` tokens for each
   * head this device serves (null for heads another replica serves), plus room for `reserveTokens`.
   * The KV content is whatever the pool holds (see `kvFill`); only lengths and memory are real.
   */
  admitSynthetic(requestId: string, lengths: (number | null)[][], reserveTokens: number): void {
    const served: boolean[][] = [];
    try {
      lengths.forEach((heads, l) => {
        served.push(heads.map((length) => length !== null));
        heads.forEach((length, head) => {
          if (length === null) return;
          this.kv.create(requestId, l, head, length + reserveTokens).length = length;
        });
      });
    } catch (error) {
      this.kv.release(requestId);
      throw error;
    }
    this.#served.set(requestId, served);
  }

  /** Drops a prefilled request that will not be committed (refused at admission). */
  discard(requestId: string): void {
    const retained = this.#retained.get(requestId);
    if (!retained) return;
    for (const buffer of [...retained.key, ...retained.value]) this.#backend.disposeBuffer(buffer);
    this.#retained.delete(requestId);
  }

  /**
   * The block table on the device, uploaded only when it changed (a request admitted or released, a
   * sequence grown by a block): in steady decode the blocks were reserved at admission, and the table
   * (one entry per block of every sequence: tens of MB for long contexts) stays where it is. The buffer
   * holds as many entries as the pool has blocks (no table lists more), and the kernels are told that
   * length: buffer and arguments stay the same as requests come and go, so a recorded decode step still
   * replays after an admission.
   */
  #uploadBlockTable(): DeviceBuffer<'i32'> {
    const table = this.kv.blockTable();
    const buffer = this.#forward.buffer('block-table', 'i32', this.kv.allocator.blockCount);
    if (table !== this.#uploaded.table || buffer !== this.#uploaded.buffer) {
      this.#backend.upload(buffer, table);
      this.#uploaded = { table, buffer };
    }
    return buffer;
  }

  #poolArgs(table: DeviceBuffer<'i32'>) {
    return {
      pool: this.#pool,
      blockTable: table,
      blockCount: this.kv.allocator.blockCount,
      blockSize: this.kv.allocator.blockSize,
      headDim: this.#config.headDim,
      blockTableLength: table.elementCount,
    };
  }

  #appendEntries(
    table: DeviceBuffer<'i32'>,
    entries: number[],
    key: DeviceBuffer<'f32'>,
    value: DeviceBuffer<'f32'>,
    rows: number,
    local: number,
  ): void {
    const list = this.#forward.buffer('kv-entries', 'i32', entries.length);
    this.#backend.upload(list, Int32Array.from(entries));
    this.#backend.run('kv-append', {
      ...this.#poolArgs(table),
      key,
      value,
      entries: list,
      rowCount: rows,
      kvHeadCount: local,
      entryCount: entries.length / KV_APPEND_ENTRY_FIELDS,
    });
  }

  /**
   * One decode step for `rows` (one token each): appends their K/V to the sequences this device
   * serves, attends over them, and returns sampled tokens (and logits when asked) on the logits device.
   */
  async decode(
    rows: DecodeRow[],
    sampling: RowSampling[] | undefined,
    returnLogits: boolean,
  ): Promise<{ tokens?: Int32Array; logits?: Float32Array }> {
    const b = this.#backend;
    const count = rows.length;
    // grow sequences first so one block table serves every layer of the step; the table goes up
    // before the step's graph (it changes only when a sequence gains a block)
    for (const row of rows) {
      const sequences = this.kv.sequencesOf(row.requestId);
      if (sequences) for (const sequence of sequences.values()) this.kv.reserveOne(sequence);
    }
    const table = this.#uploadBlockTable();
    let logits: DeviceBuffer<'f32'> | undefined;
    if (this.#graphSteps) b.beginGraphStep!(this.#stepName(rows));
    try {
      logits = await this.#decodeLayers(rows, table);
    } finally {
      if (this.#graphSteps) b.endGraphStep!();
    }
    for (const row of rows) {
      const sequences = this.kv.sequencesOf(row.requestId);
      if (sequences) for (const sequence of sequences.values()) sequence.length++;
    }
    if (!logits) return {};
    return {
      tokens: await this.#forward.sample(logits, count, sampling),
      ...(returnLogits ? { logits: await b.download(logits, { elementCount: count * this.#config.vocabSize }) } : {}),
    };
  }

  /**
   * The graph step name of a decode step: its shape (rows, and the (row, head) pairs served per layer),
   * so that the backend keeps a recorded step per shape as batches grow and shrink.
   */
  #stepName(rows: DecodeRow[]): string {
    const counts = new Array<number>(this.#config.layerCount).fill(0);
    for (const row of rows) {
      const served = this.#served.get(row.requestId);
      if (!served) continue;
      served.forEach((heads, l) => {
        for (const isServed of heads) if (isServed) counts[l]!++;
      });
    }
    return `${this.#graphName}:${rows.length}:${counts.join(',')}`;
  }

  /**
   * The device operations of a decode step (one graph step where the backend has them): embedding, every
   * layer, and the logits on the logits device.
   */
  async #decodeLayers(rows: DecodeRow[], table: DeviceBuffer<'i32'>): Promise<DeviceBuffer<'f32'> | undefined> {
    const b = this.#backend;
    const { headDim, layerCount } = this.#config;
    const count = rows.length;
    const { x, positions } = this.#forward.embed(Int32Array.from(rows, (row) => row.token));
    b.upload(
      positions,
      Int32Array.from(rows, (row) => row.position),
    );
    for (let l = 0; l < layerCount; l++) {
      const started = performance.now();
      const { q, k, v, qWidth, local } = this.#forward.projectQkv(l, x, positions, count);
      const attention = this.#forward.buffer('attention', 'f32', count * Math.max(qWidth, 1));
      if (local > 0) {
        const entries: number[] = [];
        const pairs: number[] = [];
        rows.forEach((row, r) => {
          const served = this.#served.get(row.requestId)?.[l];
          for (let head = 0; head < local; head++) {
            if (!served?.[head]) continue;
            const sequence = this.kv.get(row.requestId, l, head)!;
            entries.push(r, head, sequence.length, sequence.tableOffset);
            pairs.push(r, head, sequence.length + 1, sequence.tableOffset);
          }
        });
        // rows of heads another replica serves stay zero; when this device serves every (row, head) the
        // attention writes all of them and the fill is skipped
        if (pairs.length / DECODE_PAIR_FIELDS < count * local) b.fill(attention, 0, { elementCount: count * qWidth });
        if (pairs.length > 0) {
          const entryBuffer = this.#forward.buffer('kv-entries', 'i32', entries.length);
          b.upload(entryBuffer, Int32Array.from(entries));
          b.run('kv-append', {
            ...this.#poolArgs(table),
            key: k,
            value: v,
            entries: entryBuffer,
            rowCount: count,
            kvHeadCount: local,
            entryCount: entries.length / KV_APPEND_ENTRY_FIELDS,
          });
          const pairBuffer = this.#forward.buffer('decode-pairs', 'i32', pairs.length);
          b.upload(pairBuffer, Int32Array.from(pairs));
          b.run('ragged-decode-attention', {
            ...this.#poolArgs(table),
            query: q,
            output: attention,
            pairs: pairBuffer,
            rowCount: count,
            kvHeadCount: local,
            groupSize: this.#group,
            pairCount: pairs.length / DECODE_PAIR_FIELDS,
            scale: 1 / Math.sqrt(headDim),
          });
        }
      }
      this.timer.add(l, performance.now() - started);
      await this.#forward.attentionOutput(l, attention, x, count, qWidth);
      const mlpStarted = performance.now();
      await this.#forward.mlp(l, x, count);
      this.timer.add(l, performance.now() - mlpStarted);
    }
    return this.#forward.logits(x, count);
  }

  /** Samples the first generated token from prefill logits already on the host. */
  async sampleLogits(logits: Float32Array, sampling: RowSampling): Promise<number> {
    const buffer = this.#forward.buffer('logits', 'f32', logits.length);
    this.#backend.upload(buffer, logits);
    return (await this.#forward.sample(buffer, 1, [sampling]))[0]!;
  }

  /** Frees a finished request's KV blocks. */
  release(requestId: string): void {
    this.kv.release(requestId);
    this.#served.delete(requestId);
    this.discard(requestId);
  }

  /** Memory and time figures of this device. */
  stats(): DeviceStats {
    return {
      device: this.shard.device,
      kvBytes: this.kv.usedBytes,
      layerKvBytes: this.kv.bytesByLayer(this.#config.layerCount),
      kvCapacityBytes: this.kv.allocator.capacityBytes,
      allocatedBytes: this.#backend.memory().allocatedBytes,
      layerBusySeconds: this.timer.seconds(),
      ...(this.#graphSteps && this.#backend.graphStats ? { graphSteps: this.#backend.graphStats() } : {}),
    };
  }

  /**
   * Starts timing every operation this device enqueues (its backend's `startProfile`). Throws
   * `UnsupportedError` when the backend cannot be profiled.
   */
  startProfile(): void {
    if (!this.#backend.startProfile || !this.#backend.stopProfile) {
      throw new UnsupportedError(`the ${this.#backend.name} backend of device ${this.shard.device} cannot be profiled`);
    }
    this.#backend.startProfile();
  }

  /** Device time per operation since {@link startProfile}, once it has all completed. */
  stopProfile(): Promise<BackendProfile> {
    if (!this.#backend.stopProfile) {
      return Promise.reject(
        new UnsupportedError(`the ${this.#backend.name} backend of device ${this.shard.device} cannot be profiled`),
      );
    }
    return this.#backend.stopProfile();
  }

  dispose(): void {
    this.#backend.dispose();
  }
}
