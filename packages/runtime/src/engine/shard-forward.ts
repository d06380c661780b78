import { type DType, type ModelConfig, queryGroupSize, ValidationError } from '@fairkv/core';
import { type Backend, type BufferDType, buildRopeTable, type DeviceBuffer } from '@fairkv/kernels';
import type { Communicator } from './communicator.js';
import type { DeviceShard } from './device-shards.js';
import type { HostWeight, ShardWeights } from './shard-weights.js';

/** Per-step sampling settings of each row. */
export interface RowSampling {
  temperature: number;
  topP: number;
  seed: number;
}

/** What {@link ShardForward} runs with. */
export interface ShardForwardOptions {
  backend: Backend;
  config: ModelConfig;
  shard: DeviceShard;
  weights: ShardWeights;
  communicator: Communicator;
  /** Dtype weights are stored in on the device (default f32). */
  dtype?: DType;
  /** Positions the RoPE table covers (default: the model's max context). */
  maxPositions?: number;
}

/** One layer's weights on the device; q | k | v and gate | up are each one fused projection. */
interface LayerBuffers {
  attentionNorm: DeviceBuffer;
  /** `[q width + 2 kv width][hidden]`: wq, wk and wv rows one after another. */
  wQkv: DeviceBuffer;
  wo: DeviceBuffer;
  ffnNorm: DeviceBuffer;
  /** `[2 ffn width][hidden]`: w-gate rows, then w-up rows. */
  wGateUp: DeviceBuffer;
  wDown: DeviceBuffer;
}

/**
 * Checks that a fused projection's parts come in one form (`sliceShardWeights` reads them alike).
 * @throws ValidationError when f32 and raw 16-bit parts are mixed.
 */
function checkOneForm(parts: HostWeight[], label: string): void {
  const raw = parts[0] instanceof Uint16Array;
  if (parts.some((part) => part instanceof Uint16Array !== raw)) {
    throw new ValidationError(`${label}: its parts mix f32 and raw 16-bit weights; give them in one form`, [
      { path: `$.weights.${label}`, message: 'mixed f32 and raw 16-bit parts' },
    ]);
  }
}

/**
 * The building blocks of one device's forward pass over its weight shard (uploaded once): embedding,
 * QKV projections of the hosted kv heads with RoPE, the partial O-projection, the MLP slice, the
 * all-reduces that end both, the final norm and LM head (logits device only) and sampling. Scratch
 * buffers are reused across steps and grow as needed.
 */
export class ShardForward {
  readonly backend: Backend;
  readonly config: ModelConfig;
  readonly shard: DeviceShard;
  readonly groupSize: number;
  readonly ropePositions: number;
  readonly #comm: Communicator;
  readonly #layers: LayerBuffers[];
  readonly #embedding: DeviceBuffer;
  readonly #outputNorm: DeviceBuffer | undefined;
  readonly #output: DeviceBuffer | undefined;
  readonly #ropeTable: DeviceBuffer<'f32'>;
  readonly #scratch = new Map<string, DeviceBuffer>();
  /** A reduced partial sum not yet added to the residual stream: the next RMSNorm adds it (fused). */
  #pending: { addend: DeviceBuffer<'f32'>; residual: DeviceBuffer<'f32'>; count: number } | undefined;

  constructor(options: ShardForwardOptions) {
    const { backend, config, shard, weights } = options;
    const dtype = options.dtype ?? 'f32';
    this.backend = backend;
    this.config = config;
    this.shard = shard;
    this.#comm = options.communicator;
    this.groupSize = queryGroupSize(config);
    /** The parts one after another in one device buffer (a fused projection's: no host copy of them joined). */
    const upload = (data: HostWeight | HostWeight[], label: string): DeviceBuffer => {
      const parts = Array.isArray(data) ? data : [data];
      checkOneForm(parts, label);
      const length = parts.reduce((sum, part) => sum + part.length, 0);
      const buffer = backend.createBuffer({ dtype, elementCount: Math.max(length, 1), label });
      let offset = 0;
      for (const part of parts) {
        if (part.length > 0) backend.upload(buffer, part, offset);
        offset += part.length;
      }
      return buffer;
    };
    this.#embedding = upload(weights.tokenEmbedding, 'token-embedding');
    // fused projections (vLLM's QKVParallelLinear / MergedColumnParallelLinear): one matmul reads
    // q | k | v and one gate | up, and splits its output by weight rows
    this.#layers = weights.layers.map((layer, l) => ({
      attentionNorm: upload(layer.attentionNorm, `layers.${l}.attention-norm`),
      wQkv: upload([layer.wq, layer.wk, layer.wv], `layers.${l}.wqkv`),
      wo: upload(layer.wo, `layers.${l}.wo`),
      ffnNorm: upload(layer.ffnNorm, `layers.${l}.ffn-norm`),
      wGateUp: upload([layer.wGate, layer.wUp], `layers.${l}.w-gate-up`),
      wDown: upload(layer.wDown, `layers.${l}.w-down`),
    }));
    this.#outputNorm = weights.outputNorm ? upload(weights.outputNorm, 'output-norm') : undefined;
    this.#output = weights.output ? upload(weights.output, 'output') : undefined;
    this.ropePositions = options.maxPositions ?? config.maxContext;
    this.#ropeTable = backend.createBuffer({
      dtype: 'f32',
      elementCount: this.ropePositions * config.headDim,
      label: 'rope-table',
    });
    backend.upload(
      this.#ropeTable,
      buildRopeTable({
        headDim: config.headDim,
        base: config.ropeTheta,
        scaling: config.ropeScaling,
        positionCount: this.ropePositions,
      }),
    );
  }

  /** A named scratch buffer of at least `count` elements, reused across steps (grown when too small). */
  buffer<D extends BufferDType>(name: string, dtype: D, count: number): DeviceBuffer<D> {
    const existing = this.#scratch.get(name);
    if (existing && existing.dtype === dtype && existing.elementCount >= count) return existing as DeviceBuffer<D>;
    if (existing) this.backend.disposeBuffer(existing);
    const buffer = this.backend.createBuffer({ dtype, elementCount: Math.max(count, 1), label: name });
    this.#scratch.set(name, buffer);
    return buffer;
  }

  /** Kv heads this device hosts in `layer`. */
  localHeads(layer: number): number {
    return this.shard.layers[layer]!.length;
  }

  /**
   * All-reduces a partial sum over the devices and adds it to the residual stream. The add is deferred
   * into the next RMSNorm of `residual` (one fused kernel, as vLLM's `fused_add_rms_norm`); anything else
   * that reads the residual first calls {@link flushResidual}.
   */
  async allReduceAdd(partial: DeviceBuffer<'f32'>, residual: DeviceBuffer<'f32'>, count: number): Promise<void> {
    if (this.#comm.size > 1 && this.#comm.allReduceDeviceSum) {
      await this.#comm.allReduceDeviceSum(partial, count);
    } else if (this.#comm.size > 1) {
      const host = await this.backend.download(partial, { elementCount: count });
      await this.#comm.allReduceSum(host);
      this.backend.upload(partial, host);
    }
    this.#pending = { addend: partial, residual, count };
  }

  /**
   * The scratch buffer a partial sum is computed into. A sum still deferred from it is added first, so a
   * new partial never overwrites one that has not reached the residual stream.
   */
  #partial(count: number): DeviceBuffer<'f32'> {
    this.flushResidual();
    return this.buffer('partial', 'f32', count);
  }

  /** Adds a deferred partial sum to the residual stream now (before it is read other than by a norm). */
  flushResidual(): void {
    const pending = this.#pending;
    if (!pending) return;
    this.#pending = undefined;
    this.backend.run('add-in-place', { target: pending.residual, addend: pending.addend, elementCount: pending.count });
  }

  /** RMSNorm of `rows` rows of `input`, adding a deferred partial sum of `input` first (in the same kernel). */
  #norm(input: DeviceBuffer<'f32'>, weight: DeviceBuffer, output: DeviceBuffer<'f32'>, rows: number): void {
    const { hiddenSize: size, rmsNormEps: epsilon } = this.config;
    const pending = this.#pending;
    let addend: DeviceBuffer<'f32'> | undefined;
    if (pending && pending.residual === input && pending.count === rows * size) {
      addend = pending.addend;
      this.#pending = undefined;
    } else {
      this.flushResidual();
    }
    this.backend.run('rms-norm', {
      input,
      weight,
      output,
      rowCount: rows,
      size,
      epsilon,
      ...(addend ? { addend } : {}),
    });
  }

  /** Attention input projections for `rows` rows of layer `l`; returns q, k, v with RoPE applied. */
  projectQkv(l: number, x: DeviceBuffer<'f32'>, positions: DeviceBuffer<'i32'>, rows: number) {
    const b = this.backend;
    const { hiddenSize: hidden, headDim } = this.config;
    const local = this.localHeads(l);
    const w = this.#layers[l]!;
    const h = this.buffer('norm', 'f32', rows * hidden);
    this.#norm(x, w.attentionNorm, h, rows);
    const qWidth = local * this.groupSize * headDim;
    const q = this.buffer('q', 'f32', rows * qWidth);
    const k = this.buffer('k', 'f32', rows * local * headDim);
    const v = this.buffer('v', 'f32', rows * local * headDim);
    if (local === 0) return { q, k, v, qWidth, local };
    b.run('matmul', {
      input: h,
      weight: w.wQkv,
      output: q,
      rowCount: rows,
      innerSize: hidden,
      outerSize: qWidth,
      output2: k,
      outerSize2: local * headDim,
      output3: v,
      outerSize3: local * headDim,
    });
    const rope = {
      positions,
      table: this.#ropeTable,
      rowCount: rows,
      headDim,
      tablePositionCount: this.ropePositions,
      layout: this.config.ropeLayout,
    };
    b.run('rope', { ...rope, data: q, headCount: local * this.groupSize });
    b.run('rope', { ...rope, data: k, headCount: local });
    return { q, k, v, qWidth, local };
  }

  /** The MLP slice of layer `l` and its all-reduce. */
  async mlp(l: number, x: DeviceBuffer<'f32'>, rows: number): Promise<void> {
    const b = this.backend;
    const { hiddenSize: hidden } = this.config;
    const w = this.#layers[l]!;
    const width = this.shard.ffnEnd - this.shard.ffnStart;
    const h = this.buffer('norm', 'f32', rows * hidden);
    this.#norm(x, w.ffnNorm, h, rows);
    const gate = this.buffer('gate', 'f32', rows * width);
    const up = this.buffer('up', 'f32', rows * width);
    b.run('matmul', {
      input: h,
      weight: w.wGateUp,
      output: gate,
      rowCount: rows,
      innerSize: hidden,
      outerSize: width,
      output2: up,
      outerSize2: width,
    });
    b.run('swiglu', { gate, up, output: gate, elementCount: rows * width });
    const partial = this.#partial(rows * hidden);
    b.run('matmul', {
      input: gate,
      weight: w.wDown,
      output: partial,
      rowCount: rows,
      innerSize: width,
      outerSize: hidden,
    });
    await this.allReduceAdd(partial, x, rows * hidden);
  }

  /** The O-projection of the attention output rows and its all-reduce. */
  async attentionOutput(
    l: number,
    attention: DeviceBuffer<'f32'>,
    x: DeviceBuffer<'f32'>,
    rows: number,
    qWidth: number,
  ): Promise<void> {
    const hidden = this.config.hiddenSize;
    const partial = this.#partial(rows * hidden);
    if (qWidth > 0) {
      this.backend.run('matmul', {
        input: attention,
        weight: this.#layers[l]!.wo,
        output: partial,
        rowCount: rows,
        innerSize: qWidth,
        outerSize: hidden,
      });
    } else {
      this.backend.fill(partial, 0, { elementCount: rows * hidden });
    }
    await this.allReduceAdd(partial, x, rows * hidden);
  }

  /** Uploads the rows' tokens and gathers their embeddings into the residual buffer. */
  embed(tokens: Int32Array): { x: DeviceBuffer<'f32'>; positions: DeviceBuffer<'i32'> } {
    const rows = tokens.length;
    // the residual buffer is about to be overwritten: a sum still deferred into it is moot
    this.#pending = undefined;
    const ids = this.buffer('tokens', 'i32', rows);
    this.backend.upload(ids, tokens);
    const x = this.buffer('residual', 'f32', rows * this.config.hiddenSize);
    this.backend.run('embedding-gather', {
      table: this.#embedding,
      tokens: ids,
      output: x,
      rowCount: rows,
      vocabSize: this.config.vocabSize,
      hiddenSize: this.config.hiddenSize,
    });
    return { x, positions: this.buffer('positions', 'i32', rows) };
  }

  /** Final norm + LM head on the logits device: logits `[rows][vocab]` in a device buffer. */
  logits(x: DeviceBuffer<'f32'>, rows: number, firstRow = 0): DeviceBuffer<'f32'> | undefined {
    if (!this.#output || !this.#outputNorm) return undefined;
    const b = this.backend;
    const { hiddenSize: hidden, vocabSize } = this.config;
    let input = x;
    if (firstRow > 0) {
      this.flushResidual();
      input = this.buffer('last-rows', 'f32', rows * hidden);
      b.copy({
        source: x,
        sourceOffset: firstRow * hidden,
        destination: input,
        destinationOffset: 0,
        elementCount: rows * hidden,
      });
    }
    const h = this.buffer('final-norm', 'f32', rows * hidden);
    this.#norm(input, this.#outputNorm, h, rows);
    const logits = this.buffer('logits', 'f32', rows * vocabSize);
    b.run('matmul', {
      input: h,
      weight: this.#output,
      output: logits,
      rowCount: rows,
      innerSize: hidden,
      outerSize: vocabSize,
    });
    return logits;
  }

  /** Samples one token per row on the device (argmax when every temperature is 0). */
  async sample(logits: DeviceBuffer<'f32'>, rows: number, sampling: RowSampling[] | undefined): Promise<Int32Array> {
    const b = this.backend;
    const vocabSize = this.config.vocabSize;
    const output: DeviceBuffer<'i32'> = this.buffer('sampled', 'i32', rows);
    if (!sampling || sampling.every((row) => row.temperature <= 0)) {
      b.run('argmax', { logits, output, rowCount: rows, vocabSize });
    } else {
      const temperatures = this.buffer('temperatures', 'f32', rows);
      const topPs = this.buffer('top-ps', 'f32', rows);
      const seeds = this.buffer('seeds', 'i32', rows);
      b.upload(
        temperatures,
        Float32Array.from(sampling, (row) => row.temperature),
      );
      b.upload(
        topPs,
        Float32Array.from(sampling, (row) => row.topP),
      );
      b.upload(
        seeds,
        Int32Array.from(sampling, (row) => row.seed | 0),
      );
      b.run('top-p-sample', { logits, temperatures, topPs, seeds, output, rowCount: rows, vocabSize });
    }
    return b.download(output, { elementCount: rows });
  }
}
