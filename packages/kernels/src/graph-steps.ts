/**
 * Graph steps (`Backend.beginGraphStep`) for any backend that can record its queue into a graph and
 * launch it again (the CUDA backend: CUDA graphs). A sequence of operations the caller issues again
 * and again (a decode step) is captured once and then launched as one graph instead of one launch per
 * operation, which removes most of the host's time per operation (argument checks, the addon call, the
 * launch itself: 8-17 µs each on the CUDA backend, bench/cuda-host-overhead).
 *
 * Per step name: the first step runs eagerly (it sizes workspaces and scratch buffers); the second is
 * captured (its operations are recorded and enqueued into a stream capture, uploads reading from
 * host slots of the graph, page-locked on CUDA), then launched; later steps are *replayed*: every operation is
 * compared with the recorded one (the same kernel, the same buffers, the same numbers; uploads of the
 * same length to the same place) and its upload data written into the slot, and the graph is launched
 * at the end. The first operation that differs, a call that needs the device (download, synchronize,
 * disposing a buffer) or an error ends the graph's use for the step: what was collected runs eagerly,
 * in order, then the step goes on eagerly and the graph is dropped (the name is captured again later).
 * So a step always computes exactly what its operations would compute one by one.
 *
 * @packageDocumentation
 */
import { BackendError, type KernelName } from '@fairkv/core';
import type { CopyOptions, DeviceBuffer, ElementRange, GraphStepStats, HostArray } from './backend.js';
import { encodeHalf } from './half-precision.js';
import type { KernelArgsMap } from './kernel-args.js';
import { isDeviceBuffer } from './validate-kernel-args.js';

/** What graph steps need from the device (the CUDA backend: the addon's stream capture and graph calls). */
export interface GraphDevice {
  beginCapture(): void;
  /** Ends the capture; the instantiated graph's handle. */
  endCapture(): bigint;
  /** Ends a broken capture, discarding it. */
  abortCapture(): void;
  /** Enqueues the graph and records its completion event. */
  launch(graph: bigint): void;
  /** Waits until the graph's last launch has completed (before its upload slots are rewritten). */
  waitLaunched(graph: bigint): void;
  destroy(graph: bigint): void;
  /** Page-locked host memory of `bytes`. */
  hostMemory(bytes: number): ArrayBuffer;
  /**
   * Optional: enqueues (into the capture) an upload that reads its slot, a typed array over
   * {@link hostMemory}, when the graph runs. Default: the backend's own upload of the slot.
   */
  uploadSlot?(buffer: DeviceBuffer, slot: HostArray, elementOffset: number): void;
}

/** The backend's own operations, run one by one (validated, enqueued or captured). */
export interface EagerOperations {
  run(kernel: KernelName, args: object): void;
  upload(buffer: DeviceBuffer, data: HostArray, elementOffset: number): void;
  fill(buffer: DeviceBuffer, value: number, range: ElementRange): void;
  copy(options: CopyOptions): void;
}

type Operation =
  | { kind: 'run'; kernel: KernelName; args: Record<string, unknown>; keys: number }
  | { kind: 'upload'; buffer: DeviceBuffer; elementOffset: number; length: number; type: string; slot: HostArray }
  | { kind: 'fill'; buffer: DeviceBuffer; value: number; offset: number; count: number | undefined }
  | { kind: 'copy'; options: CopyOptions }
  | { kind: 'external'; key: string; buffers: DeviceBuffer[]; numbers: number[]; enqueue: () => void };

/** A recorded step: its operations, cut into segments of consecutive operations, one graph each. */
interface RecordedGraph {
  operations: Operation[];
  segments: Segment[];
  buffers: Set<DeviceBuffer>;
  launches: number;
}

interface Segment {
  handle: bigint;
  /** One past its last operation's index in the step. */
  end: number;
}

interface NameState {
  /** Slot bytes the uploads of the last eager step took (the next capture's slot memory). */
  uploadBytes: number;
  /** Captures in a row that failed. */
  failures: number;
  /** Graphs in a row dropped after fewer than {@link STABLE_GRAPH_LAUNCHES} launches. */
  earlyDrops: number;
  /** Steps to run eagerly before the next capture (after early drops: 2, 4, ... 64). */
  cooldown: number;
  /** Why this name is never captured again, if so. */
  disabled?: string;
}

interface OpenStep {
  name: string;
  mode: 'eager' | 'capture' | 'replay';
  /** capture: what was recorded so far; replay: the graph's operations. */
  operations: Operation[];
  /** replay: operations matched so far. */
  matched: number;
  graph?: RecordedGraph;
  /** capture: the segments captured and launched so far; replay: the next segment to launch. */
  segments: Segment[];
  nextSegment: number;
  uploadBytes: number;
  /** capture: the slot memory and how much of it is taken. */
  slots?: ArrayBuffer;
  slotsUsed: number;
}

/**
 * Operations per graph segment by default. A step is captured as consecutive segments, each its own
 * graph, and a replay launches each segment as soon as its operations have matched: the device works
 * on the first segments while the host is still issuing the later ones, as it does with eager launches.
 */
export const GRAPH_SEGMENT_OPERATIONS = 32;

/**
 * Recorded steps kept at once by default: stepping through several shapes (batch sizes) keeps a graph
 * per shape; beyond this many the least recently used one is dropped.
 */
export const MAX_RECORDED_GRAPHS = 16;
/** Step names whose history (upload sizes, failures) is kept; the least recently used go first. */
const MAX_NAME_STATES = 256;

/** Options of {@link GraphSteps}. */
export interface GraphStepsOptions {
  /** Operations per graph segment (default {@link GRAPH_SEGMENT_OPERATIONS}). */
  segmentOperations?: number;
  /** Recorded steps kept at once (default {@link MAX_RECORDED_GRAPHS}). */
  maxGraphs?: number;
}

/** Captures in a row that may fail before a name is run eagerly for good. */
export const MAX_GRAPH_CAPTURE_FAILURES = 3;
/**
 * Launches after which a dropped graph counts as having paid off; graphs dropped sooner make the name
 * wait 2, 4, ... 64 steps before its next capture (a capture costs more than an eager step).
 */
export const STABLE_GRAPH_LAUNCHES = 8;

/** Graph steps of one backend queue (see the module comment). */
export class GraphSteps {
  readonly #device: GraphDevice;
  readonly #eager: EagerOperations;
  readonly #graphs = new Map<string, RecordedGraph>();
  readonly #names = new Map<string, NameState>();
  #step: OpenStep | undefined;
  readonly #stats: Omit<GraphStepStats, 'graphs'> = { captures: 0, replays: 0, fallbacks: 0, failedCaptures: 0 };
  readonly #segmentOperations: number;
  readonly #maxGraphs: number;

  constructor(device: GraphDevice, eager: EagerOperations, options: GraphStepsOptions = {}) {
    const { segmentOperations = GRAPH_SEGMENT_OPERATIONS, maxGraphs = MAX_RECORDED_GRAPHS } = options;
    for (const [field, value] of [
      ['segmentOperations', segmentOperations],
      ['maxGraphs', maxGraphs],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) {
        throw new BackendError(`GraphSteps ${field}: expected a positive integer, got ${value}`);
      }
    }
    this.#device = device;
    this.#eager = eager;
    this.#segmentOperations = segmentOperations;
    this.#maxGraphs = maxGraphs;
  }

  /** Whether a step is open (the backend routes its operations here). */
  get open(): boolean {
    return this.#step !== undefined;
  }

  /** Counters since creation, and the graphs held now. */
  stats(): GraphStepStats {
    return { ...this.#stats, graphs: this.#graphs.size };
  }

  /** Opens a step; `eagerOnly` (profiling, graphs turned off): run it one operation at a time. */
  begin(name: string, eagerOnly = false): void {
    if (typeof name !== 'string' || name.length === 0) {
      throw new BackendError(`beginGraphStep: name must be a non-empty string, got ${JSON.stringify(name)}`);
    }
    if (this.#step) {
      throw new BackendError(`beginGraphStep('${name}'): graph step '${this.#step.name}' is still open`);
    }
    const state = this.#names.get(name);
    const graph = this.#graphs.get(name);
    // most recently used last (the maps' order)
    if (state) {
      this.#names.delete(name);
      this.#names.set(name, state);
    }
    if (graph) {
      this.#graphs.delete(name);
      this.#graphs.set(name, graph);
    }
    const step: OpenStep = {
      name,
      mode: 'eager',
      operations: [],
      matched: 0,
      segments: [],
      nextSegment: 0,
      uploadBytes: 0,
      slotsUsed: 0,
    };
    if (eagerOnly) {
      // run as is
    } else if (graph) {
      // its slots are rewritten from here on: the last launch must be done with them
      this.#device.waitLaunched(graph.segments.at(-1)!.handle);
      step.mode = 'replay';
      step.graph = graph;
      step.operations = graph.operations;
    } else if (state && !state.disabled && state.cooldown > 0) {
      state.cooldown--;
    } else if (state && !state.disabled) {
      step.slots = this.#device.hostMemory(Math.max(64, state.uploadBytes));
      this.#device.beginCapture();
      step.mode = 'capture';
    }
    this.#step = step;
  }

  end(): void {
    const step = this.#step;
    if (!step) throw new BackendError('endGraphStep: no graph step is open');
    this.#step = undefined;
    if (step.mode === 'eager') {
      const state = this.#names.get(step.name);
      if (state) state.uploadBytes = step.uploadBytes;
      else {
        this.#names.set(step.name, { uploadBytes: step.uploadBytes, failures: 0, earlyDrops: 0, cooldown: 0 });
        this.#forgetOldNames();
      }
    } else if (step.mode === 'capture') {
      this.#endCapture(step);
    } else if (step.matched < step.operations.length) {
      this.#fallBack(step); // fewer operations than recorded
    } else {
      step.graph!.launches++;
      this.#stats.replays++;
    }
  }

  /**
   * A call that needs the step's operations to have run (download, synchronize, disposing or creating
   * a buffer during a capture): what was collected runs now and the step goes on eagerly.
   */
  interrupt(creating = false): void {
    const step = this.#step;
    if (!step) return;
    if (step.mode === 'capture') this.#abortCapture(step);
    else if (step.mode === 'replay' && !creating) this.#fallBack(step);
  }

  /** Drops every graph that uses `buffer` (it is being disposed). */
  forget(buffer: DeviceBuffer): void {
    for (const [name, graph] of this.#graphs) {
      if (graph.buffers.has(buffer)) this.#drop(name, graph);
    }
  }

  /** Destroys every graph (the backend is disposed). */
  dispose(): void {
    if (this.#step?.mode === 'capture') this.#device.abortCapture();
    this.#step = undefined;
    for (const [name, graph] of this.#graphs) this.#drop(name, graph);
  }

  run<K extends KernelName>(kernel: K, args: KernelArgsMap[K]): void {
    const record = args as unknown as Record<string, unknown>;
    this.#operation(
      (expected) =>
        expected.kind === 'run' && expected.kernel === kernel && sameArguments(expected.args, expected.keys, record),
      () => {
        const copy = { ...record };
        return { kind: 'run', kernel, args: copy, keys: Object.keys(copy).length };
      },
      () => this.#eager.run(kernel, args),
    );
  }

  upload(buffer: DeviceBuffer, data: HostArray, elementOffset: number): void {
    const type = data.constructor.name;
    const step = this.#step!;
    // Float32 data for an f16/bf16 buffer is rounded into the slot: the graph copies what the device holds.
    const encoded = data instanceof Float32Array && (buffer.dtype === 'f16' || buffer.dtype === 'bf16');
    const slotType = encoded ? 'Uint16Array' : type;
    // what its slot takes: slots start on 16 bytes
    const slotBytes = Math.ceil((data.length * (slotType === 'Uint16Array' ? 2 : 4)) / 16) * 16;
    this.#operation(
      (expected) =>
        expected.kind === 'upload' &&
        expected.buffer === buffer &&
        expected.elementOffset === elementOffset &&
        expected.length === data.length &&
        expected.type === type,
      () => {
        const slot = this.#slot(step, slotType, data.length, slotBytes);
        if (!slot) return undefined;
        return { kind: 'upload', buffer, elementOffset, length: data.length, type, slot };
      },
      () => this.#eager.upload(buffer, data, elementOffset),
      (operation) => {
        const { slot } = operation as Extract<Operation, { kind: 'upload' }>;
        if (encoded) encodeHalf(buffer.dtype as 'f16' | 'bf16', data as Float32Array, slot as Uint16Array, 0);
        else slot.set(data as never);
      },
    );
    step.uploadBytes += slotBytes;
  }

  fill(buffer: DeviceBuffer, value: number, range: ElementRange): void {
    const offset = range.elementOffset ?? 0;
    const count = range.elementCount;
    this.#operation(
      (expected) =>
        expected.kind === 'fill' &&
        expected.buffer === buffer &&
        Object.is(expected.value, value) &&
        expected.offset === offset &&
        expected.count === count,
      () => ({ kind: 'fill', buffer, value, offset, count }),
      () => this.#eager.fill(buffer, value, range),
    );
  }

  copy(options: CopyOptions): void {
    this.#operation(
      (expected) =>
        expected.kind === 'copy' &&
        expected.options.source === options.source &&
        expected.options.destination === options.destination &&
        expected.options.sourceOffset === options.sourceOffset &&
        expected.options.destinationOffset === options.destinationOffset &&
        expected.options.elementCount === options.elementCount,
      () => ({ kind: 'copy', options: { ...options } }),
      () => this.#eager.copy(options),
    );
  }

  /**
   * An operation the backend does not define but that enqueues onto its queue (e.g. an NCCL all-reduce
   * on the CUDA stream): `key` names it, `buffers` and `numbers` are all it depends on (compared by
   * identity and value), `enqueue` issues it (captured into the graph when capturing).
   */
  external(key: string, buffers: DeviceBuffer[], numbers: number[], enqueue: () => void): void {
    this.#operation(
      (expected) =>
        expected.kind === 'external' &&
        expected.key === key &&
        sameList(expected.buffers, buffers) &&
        sameList(expected.numbers, numbers),
      () => ({ kind: 'external', key, buffers: [...buffers], numbers: [...numbers], enqueue }),
      enqueue,
    );
  }

  /**
   * One operation of the open step. `matches`: whether it is the recorded one (replay); `record`: what a
   * capture keeps (undefined: it cannot be captured, the capture is abandoned); `eager`: run it now;
   * `stage`: write an upload's data into its slot.
   */
  #operation(
    matches: (expected: Operation) => boolean,
    record: () => Operation | undefined,
    eager: () => void,
    stage?: (operation: Operation) => void,
  ): void {
    const step = this.#step!;
    if (step.mode === 'replay') {
      const expected = step.operations[step.matched];
      if (expected && matches(expected)) {
        stage?.(expected);
        step.matched++;
        const segment = step.graph!.segments[step.nextSegment]!;
        if (step.matched === segment.end) {
          this.#device.launch(segment.handle);
          step.nextSegment++;
        }
        return;
      }
      this.#fallBack(step);
    } else if (step.mode === 'capture') {
      const operation = record();
      if (operation) {
        try {
          if (stage) {
            stage(operation);
            // the captured copy reads the slot (page-locked) at every launch
            const upload = operation as Extract<Operation, { kind: 'upload' }>;
            if (this.#device.uploadSlot) this.#device.uploadSlot(upload.buffer, upload.slot, upload.elementOffset);
            else this.#eager.upload(upload.buffer, upload.slot, upload.elementOffset);
          } else {
            eager();
          }
          step.operations.push(operation);
          const start = step.segments.at(-1)?.end ?? 0;
          if (step.operations.length - start >= this.#segmentOperations) this.#closeSegment(step);
          return;
        } catch {
          // Not capturable here (e.g. a workspace that must grow): run the step eagerly; the operation
          // is retried below, and throws again if the error was its own.
        }
      }
      this.#abortCapture(step);
    }
    eager();
  }

  /**
   * A slot of `length` elements of the given array type in the capture's page-locked memory, taking
   * `bytes` of it (the elements rounded up to 16 bytes, so every slot starts aligned).
   */
  #slot(step: OpenStep, type: string, length: number, bytes: number): HostArray | undefined {
    const offset = step.slotsUsed;
    const slots = step.slots!;
    if (offset + bytes > slots.byteLength) return undefined;
    step.slotsUsed = offset + bytes;
    if (type === 'Int32Array') return new Int32Array(slots, offset, length);
    if (type === 'Float32Array') return new Float32Array(slots, offset, length);
    return new Uint16Array(slots, offset, length);
  }

  /** Ends the capture of the open segment, launches it, and starts capturing the next one. */
  #closeSegment(step: OpenStep, last = false): boolean {
    let handle: bigint;
    try {
      handle = this.#device.endCapture();
    } catch {
      this.#abortCapture(step);
      return false;
    }
    this.#device.launch(handle);
    step.segments.push({ handle, end: step.operations.length });
    if (!last) this.#device.beginCapture();
    return true;
  }

  #endCapture(step: OpenStep): void {
    const state = this.#names.get(step.name)!;
    const captured = step.segments.at(-1)?.end ?? 0;
    if (step.operations.length > captured || step.segments.length === 0) {
      if (!this.#closeSegment(step, true)) return;
    } else {
      this.#device.abortCapture(); // the empty segment opened after the last full one
    }
    this.#stats.captures++;
    state.failures = 0;
    state.uploadBytes = step.uploadBytes;
    if (step.operations.length === 0) {
      state.disabled = 'no operations'; // nothing to replay
      for (const segment of step.segments) this.#device.destroy(segment.handle);
      return;
    }
    const buffers = new Set<DeviceBuffer>();
    for (const operation of step.operations) {
      if (operation.kind === 'run') {
        for (const value of Object.values(operation.args)) if (isDeviceBuffer(value)) buffers.add(value);
      } else if (operation.kind === 'copy') {
        buffers.add(operation.options.source).add(operation.options.destination);
      } else if (operation.kind === 'external') {
        for (const buffer of operation.buffers) buffers.add(buffer);
      } else {
        buffers.add(operation.buffer);
      }
    }
    this.#graphs.set(step.name, { operations: step.operations, segments: step.segments, buffers, launches: 1 });
    // the least recently used graphs beyond the limit go (no penalty for their names)
    for (const [name, graph] of this.#graphs) {
      if (this.#graphs.size <= this.#maxGraphs) break;
      this.#drop(name, graph, true);
    }
  }

  /**
   * Abandons a capture: the operations of its open segment run eagerly, in order (the segments before
   * it were launched), and the step goes on eagerly.
   */
  #abortCapture(step: OpenStep): void {
    this.#device.abortCapture();
    const state = this.#names.get(step.name)!;
    this.#stats.failedCaptures++;
    if (++state.failures >= MAX_GRAPH_CAPTURE_FAILURES) state.disabled = `${state.failures} captures failed`;
    step.mode = 'eager';
    this.#runEagerly(step.operations.slice(step.segments.at(-1)?.end ?? 0));
    for (const segment of step.segments) this.#device.destroy(segment.handle);
    step.operations = [];
    step.segments = [];
  }

  /**
   * Leaves a replay: the matched operations not launched yet (those of the open segment) run eagerly,
   * the graph is dropped, and the step goes on eagerly.
   */
  #fallBack(step: OpenStep): void {
    this.#stats.fallbacks++;
    step.mode = 'eager';
    const launched = step.nextSegment === 0 ? 0 : step.graph!.segments[step.nextSegment - 1]!.end;
    this.#runEagerly(step.operations.slice(launched, step.matched));
    this.#drop(step.name, step.graph!);
  }

  #runEagerly(operations: Operation[]): void {
    for (const operation of operations) {
      switch (operation.kind) {
        case 'run':
          this.#eager.run(operation.kernel, operation.args);
          break;
        case 'upload':
          // a copy: the slot belongs to a graph that may be destroyed
          this.#eager.upload(operation.buffer, operation.slot.slice(), operation.elementOffset);
          break;
        case 'fill':
          this.#eager.fill(operation.buffer, operation.value, {
            elementOffset: operation.offset,
            ...(operation.count === undefined ? {} : { elementCount: operation.count }),
          });
          break;
        case 'copy':
          this.#eager.copy(operation.options);
          break;
        case 'external':
          operation.enqueue();
          break;
      }
    }
  }

  /** Keeps the history of at most MAX_NAME_STATES names without a graph, the most recently used. */
  #forgetOldNames(): void {
    for (const name of this.#names.keys()) {
      if (this.#names.size <= MAX_NAME_STATES) break;
      if (!this.#graphs.has(name)) this.#names.delete(name);
    }
  }

  /** Destroys a graph; `evicted`: for room, not because it stopped matching (its name keeps its history). */
  #drop(name: string, graph: RecordedGraph, evicted = false): void {
    if (this.#graphs.get(name) === graph) this.#graphs.delete(name);
    for (const segment of graph.segments) this.#device.destroy(segment.handle);
    const state = this.#names.get(name);
    if (!state || evicted) return;
    if (graph.launches >= STABLE_GRAPH_LAUNCHES) {
      // one eager step first: it sizes what changed (scratch buffers, workspaces) outside a capture
      state.earlyDrops = 0;
      state.cooldown = Math.max(state.cooldown, 1);
    } else {
      state.earlyDrops++;
      state.cooldown = 2 ** Math.min(6, state.earlyDrops);
    }
  }
}

function sameList<T>(expected: readonly T[], actual: readonly T[]): boolean {
  return expected.length === actual.length && expected.every((value, i) => value === actual[i]);
}

/** Same keys and values (buffers by identity, numbers by value, NaN equal to NaN). */
function sameArguments(expected: Record<string, unknown>, keys: number, actual: Record<string, unknown>): boolean {
  let count = 0;
  for (const key in actual) {
    const value = actual[key];
    const recorded = expected[key];
    // biome-ignore lint/suspicious/noSelfCompare: NaN arguments match NaN
    if (value !== recorded && !(value !== value && recorded !== recorded)) return false;
    count++;
  }
  return count === keys;
}
