import { type CompressionPolicy, fullPolicy, type LayerCompression, type PromptCompression } from '@fairkv/compress';
import {
  BackendError,
  CancelledError,
  CapacityError,
  type ModelConfig,
  type Plan,
  ValidationError,
} from '@fairkv/core';
import { type BackendProfile, samplingSeed } from '@fairkv/kernels';
import type { Tokenizer, TokenStreamDecoder } from '../tokenizer/tokenizer.js';
import type { DeviceHandle } from './device-handle.js';
import { type DeviceShard, deviceShardsFromPlan } from './device-shards.js';
import type { DeviceStats } from './device-stats.js';
import {
  type GenerateOptions,
  GenerationStream,
  type ResolvedGenerateOptions,
  resolveGenerateOptions,
} from './generation.js';
import type { HeadObservation, PrefillObservation } from './prefill-observation.js';
import { assembleLayerObservation } from './prompt-observations.js';
import { ReplicaRouter } from './replica-router.js';

/** How long a failed call's other devices get to return once their collectives were aborted. */
const COLLECTIVE_SETTLE_MS = 10_000;

/** What the coordinator needs besides its devices. */
export interface InferenceEngineOptions {
  config: ModelConfig;
  plan: Plan;
  devices: DeviceHandle[];
  tokenizer?: Tokenizer;
  /** Compression applied after each prefill (default `full`: keep everything). */
  policy?: CompressionPolicy;
  /** Most requests decoded together (default 8). */
  maxBatch?: number;
  /** Positions the devices' RoPE tables cover (prompt + generated must stay below). */
  maxPositions: number;
}

interface ActiveRequest {
  id: string;
  stream: GenerationStream;
  options: ResolvedGenerateOptions;
  promptTokenIds: number[];
  tokenIds: number[];
  text: string;
  decoder: TokenStreamDecoder | undefined;
  keptTokens: number[][];
  replicas: number[][];
  logits: Float32Array[];
  nextToken: number;
  submitted: number;
  firstToken: number;
}

interface WaitingRequest {
  id: string;
  stream: GenerationStream;
  options: ResolvedGenerateOptions;
  promptTokenIds: number[];
  submitted: number;
}

/** Engine-wide counters. */
export interface EngineMetrics {
  devices: (DeviceStats & { shard: { kvHeadsPerLayer: number[]; ffnRows: number } })[];
  requests: { waiting: number; active: number; completed: number; refused: number };
  generatedTokens: number;
  promptTokens: number;
  decodeSteps: number;
  /** Generated tokens per second of decode wall time. */
  decodeTokensPerSecond: number;
  decodeSeconds: number;
  prefillSeconds: number;
}

/**
 * The coordinator: continuous batching over devices that each run their shard of a placement plan.
 * New requests are prefilled on every device, compressed by the policy, routed to copy replicas from
 * their actual kept tokens ({@link ReplicaRouter}), admitted when every device has the KV room (or
 * refused when one never could), and decoded together one token per step.
 */
export class InferenceEngine {
  readonly config: ModelConfig;
  readonly plan: Plan;
  readonly policy: CompressionPolicy;
  readonly #devices: DeviceHandle[];
  readonly #shards: DeviceShard[];
  readonly #router: ReplicaRouter;
  readonly #tokenizer: Tokenizer | undefined;
  readonly #maxBatch: number;
  readonly #maxPositions: number;
  #waiting: WaitingRequest[] = [];
  #active: ActiveRequest[] = [];
  #running = false;
  #lock: Promise<void> = Promise.resolve();
  #disposed = false;
  /** The first device failure inside a prefill or a decode step: the engine takes no work after one. */
  #failure: Error | undefined;
  /** The devices' collectives being aborted after {@link #failure}. */
  #aborting: Promise<unknown> | undefined;
  #nextId = 0;
  #counters = {
    completed: 0,
    refused: 0,
    generatedTokens: 0,
    decodeTokens: 0,
    promptTokens: 0,
    decodeSteps: 0,
    decodeSeconds: 0,
    prefillSeconds: 0,
  };

  constructor(options: InferenceEngineOptions) {
    this.config = options.config;
    this.plan = options.plan;
    this.policy = options.policy ?? fullPolicy();
    this.#devices = options.devices;
    const { shards, table } = deviceShardsFromPlan(options.plan, options.config);
    this.#shards = shards;
    this.#router = new ReplicaRouter(table);
    this.#tokenizer = options.tokenizer;
    this.#maxBatch = options.maxBatch ?? 8;
    this.#maxPositions = options.maxPositions;
  }

  /** Number of devices. */
  get deviceCount(): number {
    return this.#devices.length;
  }

  /**
   * Submits a prompt (text, encoded with BOS, or token ids) and returns its stream.
   * @throws ValidationError for bad options, an empty prompt, or one that cannot fit the context.
   */
  generate(prompt: string | readonly number[], options: GenerateOptions = {}): GenerationStream {
    if (this.#disposed) throw new Error('the engine is disposed');
    if (this.#failure) throw this.#stoppedError();
    const resolved = resolveGenerateOptions(options);
    let promptTokenIds: number[];
    if (typeof prompt === 'string') {
      promptTokenIds = this.#encode(prompt);
    } else {
      promptTokenIds = [...prompt];
    }
    if (promptTokenIds.length === 0)
      throw new ValidationError('prompt: empty (no tokens)', [
        { path: '$.prompt', message: 'expected at least one token' },
      ]);
    const bad = promptTokenIds.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= this.config.vocabSize);
    if (bad >= 0) {
      throw new ValidationError(
        `prompt[${bad}]: token id ${promptTokenIds[bad]} outside [0, ${this.config.vocabSize})`,
        [{ path: `$.prompt[${bad}]`, message: 'token id out of range' }],
      );
    }
    if (promptTokenIds.length + resolved.maxTokens > this.#maxPositions) {
      const message = `prompt (${promptTokenIds.length} tokens) + maxTokens (${resolved.maxTokens}) exceeds the context of ${this.#maxPositions} positions`;
      throw new ValidationError(`maxTokens: ${message}`, [{ path: '$.maxTokens', message }]);
    }
    const id = `req-${this.#nextId++}`;
    const stream = new GenerationStream(id);
    this.#waiting.push({ id, stream, options: resolved, promptTokenIds, submitted: performance.now() });
    void this.#loop();
    return stream;
  }

  async #loop(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (!this.#disposed && (this.#waiting.length > 0 || this.#active.length > 0)) {
        await this.#exclusive(async () => {
          await this.#admit();
          if (this.#active.length > 0) await this.#decodeStep();
        });
      }
    } catch (error) {
      for (const request of [...this.#active, ...this.#waiting]) request.stream.fail(error);
      this.#active = [];
      this.#waiting = [];
    } finally {
      this.#running = false;
    }
  }

  #all<T>(call: (device: DeviceHandle) => Promise<T> | T): Promise<T[]> {
    return Promise.all(this.#devices.map((device) => call(device)));
  }

  #stoppedError(): BackendError {
    return new BackendError(
      `the engine stopped after a device failed (${this.#failure?.message}); dispose it and create a new engine`,
      { cause: this.#failure },
    );
  }

  /**
   * A call with collectives inside (prefill, decode step). When one device fails, the others may wait
   * in an all-reduce for it forever: the devices' group is aborted (`abortCollectives`), their calls
   * are given {@link COLLECTIVE_SETTLE_MS} to return, and the engine stops with the device's error
   * (a device that is still blocked then is the backend's fault; the error is reported all the same).
   * Devices without `abortCollectives` (in-thread ones over given communicators) are not waited for.
   */
  async #collective<T>(call: (device: DeviceHandle) => Promise<T>): Promise<T[]> {
    if (this.#failure) throw this.#stoppedError();
    const calls = this.#devices.map((device) => Promise.resolve().then(() => call(device)));
    try {
      return await Promise.all(calls);
    } catch (error) {
      this.#failure ??= error instanceof Error ? error : new Error(String(error));
      // devices with no abort cannot be released: nothing to wait for
      if (!this.#devices.some((device) => device.abortCollectives)) throw error;
      // The abort itself may complete only once the devices dropped what still refers to their
      // collectives (NCCL waits for the CUDA graphs that captured them): it is not waited for here,
      // only the calls it releases; dispose waits for it.
      this.#aborting ??= Promise.allSettled(
        this.#devices.map((device) => Promise.resolve().then(() => device.abortCollectives?.())),
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled(calls),
        new Promise((resolve) => {
          timer = setTimeout(resolve, COLLECTIVE_SETTLE_MS);
        }),
      ]);
      clearTimeout(timer);
      throw error;
    }
  }

  /** Admits waiting requests in order while the batch and every device's KV pool have room. */
  async #admit(): Promise<void> {
    while (this.#waiting.length > 0 && this.#active.length < this.#maxBatch) {
      const request = this.#waiting[0]!;
      if (request.options.signal?.aborted) {
        this.#waiting.shift();
        request.stream.fail(new CancelledError(`request ${request.id} cancelled before it started`));
        continue;
      }
      const started = performance.now();
      const admitted = await this.#prefillAndCommit(request);
      this.#counters.prefillSeconds += (performance.now() - started) / 1000;
      if (admitted === 'wait') return;
      this.#waiting.shift();
      if (admitted === 'refused') continue;
      this.#active.push(admitted);
      this.#emit(admitted, admitted.nextToken, undefined);
    }
  }

  /** Prefills on every device and runs the policy on the assembled observations. */
  async #prefillAndDecide(
    id: string,
    tokens: Int32Array,
  ): Promise<{ observed: PrefillObservation[]; decisions: LayerCompression[] }> {
    const needs = {
      windowRows: this.policy.requirements.windowRows,
      accumulated: this.policy.requirements.accumulatedAttention,
      keyNorms: this.policy.requirements.keyNorms,
    };
    // Each layer's policy runs as soon as every device sent that layer's observation, while the devices
    // compute the next layers.
    const { layerCount } = this.config;
    const arrived: HeadObservation[][][] = Array.from({ length: layerCount }, () => []);
    const decisions: LayerCompression[] = [];
    let failure: { error: unknown } | undefined;
    const onLayer = (layer: number, heads: HeadObservation[]) => {
      const layerHeads = arrived[layer]!;
      layerHeads.push(heads);
      if (failure || layerHeads.length < this.#devices.length) return;
      try {
        const observation = assembleLayerObservation(this.config, tokens.length, layerHeads, needs.windowRows);
        decisions[layer] = this.policy.compressLayer(observation, { layerIndex: layer, layerCount });
      } catch (error) {
        failure = { error };
      }
    };
    const observed = await this.#collective((device) => device.prefill(id, tokens, needs, onLayer));
    if (failure) throw failure.error;
    const missing = arrived.findIndex((layerHeads) => layerHeads.length < this.#devices.length);
    if (missing >= 0) throw new Error(`prefill of request ${id}: no observation of layer ${missing} from every device`);
    return { observed, decisions };
  }

  #encode(prompt: string): number[] {
    if (!this.#tokenizer) {
      throw new ValidationError('prompt: a text prompt needs a tokenizer; pass token ids', [
        { path: '$.prompt', message: 'no tokenizer' },
      ]);
    }
    return this.#tokenizer.encode(prompt);
  }

  /** Runs device work alone: the devices' collectives need every device to see the same call order. */
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#lock.then(work);
    this.#lock = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  async #prefillAndCommit(request: WaitingRequest): Promise<ActiveRequest | 'wait' | 'refused'> {
    const tokens = Int32Array.from(request.promptTokenIds);
    const { observed, decisions } = await this.#prefillAndDecide(request.id, tokens);
    const keptTokens = decisions.map((decision) => Array.from(decision.budgets));
    const routes = this.#router.admit(request.id, keptTokens);
    const reserve = request.options.maxTokens;
    // KV blocks each device needs for this request, compression and the whole generation included
    const blocks = await this.#all((device) => device.kvBlocks());
    const needed = this.#shards.map((shard, d) => {
      let count = 0;
      shard.layers.forEach((heads, l) => {
        for (const head of heads) {
          if (routes[l]![head.kvHead] === head.replica)
            count += Math.ceil((keptTokens[l]![head.kvHead]! + reserve) / blocks[d]!.blockSize);
        }
      });
      return count;
    });
    const never = needed.findIndex((count, d) => count > blocks[d]!.total);
    const notNow = needed.findIndex((count, d) => count > blocks[d]!.free);
    if (never >= 0 || notNow >= 0) {
      this.#router.release(request.id, keptTokens);
      await this.#all((device) => device.discard(request.id));
      if (never >= 0 || this.#active.length === 0) {
        const d = never >= 0 ? never : notNow;
        const shortfall = needed[d]! - (never >= 0 ? blocks[d]!.total : blocks[d]!.free);
        this.#counters.refused++;
        request.stream.fail(
          new CapacityError(
            `request ${request.id} needs ${needed[d]} KV blocks on device ${d}, which has ${never >= 0 ? blocks[d]!.total : blocks[d]!.free}${never >= 0 ? ' in all' : ' free with nothing else running'}: short by ${shortfall} blocks of ${blocks[d]!.blockSize} tokens`,
            { device: d },
          ),
        );
        return 'refused';
      }
      return 'wait';
    }
    await Promise.all(
      this.#devices.map((device, d) => {
        const kept = this.#shards[d]!.layers.map((heads, l) =>
          heads.map((head) => (routes[l]![head.kvHead] === head.replica ? decisions[l]!.indices[head.kvHead]! : null)),
        );
        return device.commit(request.id, kept, reserve);
      }),
    );
    const logits = observed[0]!.logits!;
    const sampling = {
      temperature: request.options.temperature,
      topP: request.options.topP,
      seed: samplingSeed(request.options.seed, 0),
    };
    const first = await this.#devices[0]!.sampleLogits(logits, sampling);
    this.#counters.promptTokens += tokens.length;
    return {
      id: request.id,
      stream: request.stream,
      options: request.options,
      promptTokenIds: request.promptTokenIds,
      tokenIds: [],
      text: '',
      decoder: this.#tokenizer?.createStreamDecoder({ contextTokenIds: request.promptTokenIds }),
      keptTokens,
      replicas: routes.map((route) => Array.from(route)),
      logits: request.options.returnLogits ? [logits] : [],
      nextToken: first,
      submitted: request.submitted,
      firstToken: performance.now(),
    };
  }

  /** Records a generated token, streams its text, and finishes the request when a stop condition holds. */
  #emit(request: ActiveRequest, token: number, logits: Float32Array | undefined): void {
    if (logits && request.options.returnLogits) request.logits.push(logits);
    const eos = this.#tokenizer?.eosTokenId;
    if (request.options.stopAtEos && eos !== undefined && token === eos) {
      this.#finish(request, 'eos');
      return;
    }
    request.tokenIds.push(token);
    this.#counters.generatedTokens++;
    let text = request.decoder ? request.decoder.push(token) : '';
    const combined = request.text + text;
    const stopAt = request.options.stop.map((stop) => combined.indexOf(stop)).filter((index) => index >= 0);
    if (stopAt.length > 0) {
      const cut = Math.min(...stopAt);
      text = combined.slice(request.text.length, Math.max(cut, request.text.length));
      request.text = combined.slice(0, cut);
      if (text.length > 0) request.stream.push({ index: request.tokenIds.length - 1, tokenId: token, text });
      this.#finish(request, 'stop');
      return;
    }
    request.text = combined;
    request.stream.push({ index: request.tokenIds.length - 1, tokenId: token, text });
    request.nextToken = token;
    if (request.options.signal?.aborted) this.#finish(request, 'cancelled');
    else if (request.tokenIds.length >= request.options.maxTokens) this.#finish(request, 'length');
  }

  #finish(request: ActiveRequest, reason: 'eos' | 'stop' | 'length' | 'cancelled'): void {
    if (reason !== 'stop' && request.decoder) {
      const rest = request.decoder.flush();
      if (rest) {
        request.text += rest;
        request.stream.push({ index: request.tokenIds.length - 1, tokenId: request.tokenIds.at(-1) ?? -1, text: rest });
      }
    }
    this.#active = this.#active.filter((other) => other !== request);
    const grown = request.keptTokens.map((row) => row.map((kept) => kept + request.tokenIds.length));
    this.#router.release(request.id, grown);
    // a failed release surfaces on the device's next call; do not leave an unhandled rejection here
    for (const device of this.#devices) void Promise.resolve(device.release(request.id)).catch(() => {});
    this.#counters.completed++;
    const now = performance.now();
    request.stream.finish({
      requestId: request.id,
      promptTokenIds: request.promptTokenIds,
      tokenIds: request.tokenIds,
      text: request.text,
      finishReason: reason,
      keptTokens: request.keptTokens,
      replicas: request.replicas,
      ...(request.options.returnLogits ? { logits: request.logits } : {}),
      timeToFirstTokenSeconds: (request.firstToken - request.submitted) / 1000,
      totalSeconds: (now - request.submitted) / 1000,
    });
  }

  async #decodeStep(): Promise<void> {
    const batch = [...this.#active];
    const rows = batch.map((request) => ({
      requestId: request.id,
      token: request.nextToken,
      position: request.promptTokenIds.length + request.tokenIds.length - 1,
    }));
    const sampling = batch.map((request) => ({
      temperature: request.options.temperature,
      topP: request.options.topP,
      seed: samplingSeed(request.options.seed, request.tokenIds.length),
    }));
    const returnLogits = batch.some((request) => request.options.returnLogits);
    const started = performance.now();
    const results = await this.#collective((device) => device.decode(rows, sampling, returnLogits));
    this.#counters.decodeSeconds += (performance.now() - started) / 1000;
    this.#counters.decodeSteps++;
    this.#counters.decodeTokens += batch.length;
    const { tokens, logits } = results[0]!;
    const vocab = this.config.vocabSize;
    batch.forEach((request, r) => {
      this.#router.grow(request.id);
      this.#emit(request, tokens![r]!, logits ? logits.slice(r * vocab, (r + 1) * vocab) : undefined);
    });
  }

  /**
   * Prefills a prompt on the devices and returns what the policy decides for it (budgets and kept
   * indices per layer and kv head) without admitting it: what `profile` aggregates. Runs between
   * scheduler steps, so it may be called while requests are generating.
   */
  async compress(prompt: string | readonly number[]): Promise<PromptCompression> {
    const tokens = Int32Array.from(typeof prompt === 'string' ? this.#encode(prompt) : prompt);
    if (tokens.length === 0)
      throw new ValidationError('prompt: empty (no tokens)', [
        { path: '$.prompt', message: 'expected at least one token' },
      ]);
    if (tokens.length > this.#maxPositions) {
      throw new ValidationError(
        `prompt: ${tokens.length} tokens exceed the context of ${this.#maxPositions} positions`,
        [{ path: '$.prompt', message: 'longer than the context' }],
      );
    }
    const id = `compress-${this.#nextId++}`;
    const run = async () => {
      try {
        return (await this.#prefillAndDecide(id, tokens)).decisions;
      } finally {
        // after a device failure the devices take no more calls (only dispose)
        if (!this.#failure) await this.#all((device) => device.discard(id));
      }
    };
    const layers = await this.#exclusive(run);
    return { seqLen: tokens.length, layers };
  }

  /** Per-device memory and time, request counts and throughput. */
  async metrics(): Promise<EngineMetrics> {
    const stats = await this.#all((device) => device.stats());
    const c = this.#counters;
    return {
      devices: stats.map((stat, d) => ({
        ...stat,
        shard: {
          kvHeadsPerLayer: this.#shards[d]!.layers.map((heads) => heads.length),
          ffnRows: this.#shards[d]!.ffnEnd - this.#shards[d]!.ffnStart,
        },
      })),
      requests: {
        waiting: this.#waiting.length,
        active: this.#active.length,
        completed: c.completed,
        refused: c.refused,
      },
      generatedTokens: c.generatedTokens,
      promptTokens: c.promptTokens,
      decodeSteps: c.decodeSteps,
      decodeSeconds: c.decodeSeconds,
      prefillSeconds: c.prefillSeconds,
      decodeTokensPerSecond: c.decodeSeconds > 0 ? c.decodeTokens / c.decodeSeconds : 0,
    };
  }

  /**
   * Starts timing every device's operations (kernels, copies, all-reduces on the device queue) from
   * the next one on. Throws `UnsupportedError` when a device's backend cannot be profiled.
   */
  async startProfile(): Promise<void> {
    await this.#exclusive(() => this.#all((device) => device.startProfile()));
  }

  /** Stops timing and returns one profile per device (index = device), once its operations completed. */
  async stopProfile(): Promise<BackendProfile[]> {
    return this.#exclusive(() => this.#all((device) => device.stopProfile()));
  }

  /**
   * Stops the engine: pending requests fail, devices are disposed (after a device failure, once the
   * abort of their collectives completed).
   */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const request of [...this.#active, ...this.#waiting])
      request.stream.fail(new CancelledError('engine disposed'));
    this.#active = [];
    this.#waiting = [];
    try {
      await this.#all((device) => device.dispose());
    } finally {
      await this.#aborting;
    }
  }
}
