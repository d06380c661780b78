import { BackendError, type KernelName } from '@fairkv/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CopyOptions, DeviceBuffer, ElementRange, HostArray } from './backend.js';
import { type EagerOperations, type GraphDevice, GraphSteps, MAX_GRAPH_CAPTURE_FAILURES } from './graph-steps.js';

/**
 * A device that executes operations into a log, as the GPU would: eager operations at once, captured
 * ones into a graph that appends them (reading upload slots at that moment) at every launch.
 */
class LoggingDevice implements GraphDevice, EagerOperations {
  readonly log: string[] = [];
  capture: (() => string)[] | undefined;
  readonly graphs = new Map<bigint, (() => string)[]>();
  readonly calls: string[] = [];
  /** Makes an operation fail (as an uncapturable call would) while a capture is open. */
  failWhileCapturing?: (kernel: string) => boolean;
  #next = 1n;

  beginCapture(): void {
    this.calls.push('begin-capture');
    this.capture = [];
  }
  endCapture(): bigint {
    this.calls.push('end-capture');
    const handle = this.#next++;
    this.graphs.set(handle, this.capture!);
    this.capture = undefined;
    return handle;
  }
  abortCapture(): void {
    this.calls.push('abort-capture');
    this.capture = undefined;
  }
  launch(graph: bigint): void {
    this.calls.push('launch');
    for (const operation of this.graphs.get(graph)!) this.log.push(operation());
  }
  waitLaunched(): void {}
  destroy(graph: bigint): void {
    this.calls.push('destroy');
    this.graphs.delete(graph);
  }
  hostMemory(bytes: number): ArrayBuffer {
    return new ArrayBuffer(bytes);
  }

  /** What an operation outside the backend (an NCCL all-reduce) would enqueue. */
  collective(text: string): void {
    this.#enqueue(() => text);
  }

  #enqueue(describe: () => string): void {
    if (this.capture) this.capture.push(describe);
    else this.log.push(describe());
  }
  run(kernel: KernelName, args: object): void {
    if (this.capture && this.failWhileCapturing?.(kernel)) throw new Error(`${kernel} cannot be captured`);
    const text = `run ${kernel} ${describeArgs(args as Record<string, unknown>)}`;
    this.#enqueue(() => text);
  }
  upload(buffer: DeviceBuffer, data: HostArray, elementOffset: number): void {
    // captured: the copy reads `data` (the slot) when the graph runs; eager: now
    const copy = this.capture ? data : data.slice();
    this.#enqueue(() => `upload ${buffer.label}@${elementOffset} [${Array.from(copy).join(',')}]`);
  }
  fill(buffer: DeviceBuffer, value: number, range: ElementRange): void {
    this.#enqueue(() => `fill ${buffer.label} ${value} ${range.elementOffset ?? 0}+${range.elementCount ?? 'all'}`);
  }
  copy(options: CopyOptions): void {
    const { source, destination, sourceOffset, destinationOffset, elementCount } = options;
    this.#enqueue(
      () => `copy ${source.label}@${sourceOffset} ${destination.label}@${destinationOffset} ${elementCount}`,
    );
  }
}

function describeArgs(args: Record<string, unknown>): string {
  return Object.entries(args)
    .map(([key, value]) =>
      typeof value === 'object' && value !== null ? `${key}=${(value as DeviceBuffer).label}` : `${key}=${value}`,
    )
    .join(' ');
}

function buffer(label: string, dtype: DeviceBuffer['dtype'] = 'i32', elementCount = 64): DeviceBuffer {
  return { dtype, elementCount, byteLength: elementCount * 4, label, disposed: false };
}

const tokens = buffer('tokens');
const hidden = buffer('hidden', 'f32');
const weights = buffer('weights', 'bf16');

/** A decode-like step: an upload of `data`, two kernels, a fill. */
function step(steps: GraphSteps, data: number[], rows = data.length): string[] {
  const issued: string[] = [];
  const upload = Int32Array.from(data);
  steps.upload(tokens, upload, 0);
  issued.push(`upload tokens@0 [${data.join(',')}]`);
  upload.fill(-1); // the caller may reuse its array at once
  steps.run('embedding-gather', { table: weights, tokens, output: hidden, rowCount: rows } as never);
  issued.push(`run embedding-gather table=weights tokens=tokens output=hidden rowCount=${rows}`);
  steps.run('rms-norm', { input: hidden, output: hidden, rowCount: rows, epsilon: 1e-5 } as never);
  issued.push(`run rms-norm input=hidden output=hidden rowCount=${rows} epsilon=0.00001`);
  steps.fill(hidden, 0, { elementOffset: 4 });
  issued.push('fill hidden 0 4+all');
  return issued;
}

/** `count` steps named 'decode' of one row each: the first eager, the second captured, then replays. */
function warm(steps: GraphSteps, count: number): void {
  for (let i = 0; i < count; i++) {
    steps.begin('decode');
    step(steps, [i + 1]);
    steps.end();
  }
}

function create(segmentOperations?: number, maxGraphs?: number): { device: LoggingDevice; steps: GraphSteps } {
  const device = new LoggingDevice();
  return {
    device,
    steps: new GraphSteps(device, device, {
      ...(segmentOperations === undefined ? {} : { segmentOperations }),
      ...(maxGraphs === undefined ? {} : { maxGraphs }),
    }),
  };
}

describe('GraphSteps', () => {
  it('runs the first step eagerly, captures the second and replays the third with its own data', () => {
    const { device, steps } = create();
    const expected: string[] = [];
    for (const data of [
      [1, 2],
      [3, 4],
      [5, 6],
    ]) {
      steps.begin('decode');
      expected.push(...step(steps, data));
      steps.end();
    }
    expect(device.log).toEqual(expected);
    expect(device.calls).toEqual(['begin-capture', 'end-capture', 'launch', 'launch']);
    expect(steps.stats()).toEqual({ captures: 1, replays: 1, fallbacks: 0, failedCaptures: 0, graphs: 1 });
  });

  it('launches each segment of a replay as soon as its operations matched', () => {
    const { device, steps } = create(2);
    warm(steps, 2);
    // captured as two segments of two operations, each launched when captured
    expect(device.calls).toEqual([
      ...['begin-capture', 'end-capture', 'launch'],
      ...['begin-capture', 'end-capture', 'launch'],
      ...['begin-capture', 'abort-capture'], // the empty segment after the last full one
    ]);
    device.calls.length = 0;
    device.log.length = 0;
    steps.begin('decode');
    steps.upload(tokens, Int32Array.of(3), 0);
    steps.run('embedding-gather', { table: weights, tokens, output: hidden, rowCount: 1 } as never);
    expect(device.calls).toEqual(['launch']); // the first segment runs while the host issues the rest
    expect(device.log).toHaveLength(2);
    steps.run('rms-norm', { input: hidden, output: hidden, rowCount: 1, epsilon: 1e-5 } as never);
    steps.fill(hidden, 1, { elementOffset: 4 }); // differs from the recorded fill's value
    steps.end();
    expect(device.log.slice(2)).toEqual([
      'run rms-norm input=hidden output=hidden rowCount=1 epsilon=0.00001',
      'fill hidden 1 4+all',
    ]);
    expect(steps.stats()).toMatchObject({ replays: 0, fallbacks: 1, graphs: 0 });
    expect(() => new GraphSteps(device, device, { segmentOperations: 0 })).toThrow(
      /GraphSteps segmentOperations: expected a positive integer, got 0/,
    );
    expect(() => new GraphSteps(device, device, { maxGraphs: 1.5 })).toThrow(/maxGraphs: .* got 1.5/);
  });

  it('falls back at the first operation that differs: what was collected runs first, in order', () => {
    const { device, steps } = create();
    const expected: string[] = [];
    for (const data of [[1], [2], [3]]) {
      steps.begin('decode');
      expected.push(...step(steps, data));
      steps.end();
    }
    steps.begin('decode');
    expected.push(...step(steps, [7, 8])); // a second row: the upload's length differs
    steps.end();
    expect(device.log).toEqual(expected);
    expect(steps.stats()).toMatchObject({ replays: 1, fallbacks: 1, graphs: 0 });
    expect(device.calls.at(-1)).toBe('destroy');

    // the same kernel with another row count, after a matching upload
    const fresh = create();
    warm(fresh.steps, 3);
    fresh.device.log.length = 0;
    fresh.steps.begin('decode');
    const issued = step(fresh.steps, [9], 2);
    fresh.steps.end();
    expect(fresh.device.log).toEqual(issued);
    expect(fresh.steps.stats().fallbacks).toBe(1);
  });

  it('falls back when a step issues fewer operations than the graph holds', () => {
    const { device, steps } = create();
    warm(steps, 2);
    device.log.length = 0;
    steps.begin('decode');
    steps.upload(tokens, Int32Array.of(42), 0);
    steps.end();
    expect(device.log).toEqual(['upload tokens@0 [42]']);
    expect(steps.stats()).toMatchObject({ fallbacks: 1, graphs: 0 });
  });

  it('captures steps with many uploads of odd sizes (each slot aligned to 16 bytes)', () => {
    const { device, steps } = create();
    const expected: string[] = [];
    for (let s = 0; s < 4; s++) {
      steps.begin('decode');
      for (let u = 0; u < 9; u++) {
        const data = Int32Array.from({ length: 7 }, (_, i) => 100 * s + 10 * u + i);
        steps.upload(tokens, data, u);
        expected.push(`upload tokens@${u} [${Array.from(data).join(',')}]`);
      }
      steps.end();
    }
    expect(device.log).toEqual(expected);
    expect(steps.stats()).toMatchObject({ captures: 1, replays: 2, failedCaptures: 0 });
  });

  it('waits 2, 4, ... steps before capturing again a name whose graphs keep being dropped early', () => {
    const { device, steps } = create();
    const run = (data: number[]) => {
      steps.begin('decode');
      step(steps, data);
      steps.end();
    };
    run([1]);
    run([1]); // captured
    run([1, 2]); // differs: dropped after one launch
    device.calls.length = 0;
    run([1, 2]);
    run([1, 2]);
    expect(device.calls).toEqual([]); // two eager steps
    run([1, 2]);
    expect(device.calls).toEqual(['begin-capture', 'end-capture', 'launch']);
  });

  it('runs a capture that meets an uncapturable operation eagerly, and gives up on the name after repeated failures', () => {
    const { device, steps } = create();
    device.failWhileCapturing = (kernel) => kernel === 'rms-norm';
    const expected: string[] = [];
    for (let i = 0; i < MAX_GRAPH_CAPTURE_FAILURES + 3; i++) {
      steps.begin('decode');
      expected.push(...step(steps, [i]));
      steps.end();
    }
    expect(device.log).toEqual(expected);
    expect(device.calls.filter((call) => call === 'abort-capture')).toHaveLength(MAX_GRAPH_CAPTURE_FAILURES);
    expect(steps.stats()).toMatchObject({ captures: 0, failedCaptures: MAX_GRAPH_CAPTURE_FAILURES, graphs: 0 });
  });

  it('rethrows an operation error of its own after running the captured operations eagerly', () => {
    const device = new LoggingDevice();
    const failing: EagerOperations = {
      run: (kernel, args) => {
        if ((args as { rowCount?: number }).rowCount === 0) throw new Error('rowCount: expected a positive integer');
        device.run(kernel, args);
      },
      upload: device.upload.bind(device),
      fill: device.fill.bind(device),
      copy: device.copy.bind(device),
    };
    const guarded = new GraphSteps(device, failing);
    guarded.begin('decode');
    step(guarded, [1]);
    guarded.end();
    device.log.length = 0;
    guarded.begin('decode'); // captured
    guarded.upload(tokens, Int32Array.of(5), 0);
    expect(() =>
      guarded.run('rms-norm', { input: hidden, output: hidden, rowCount: 0, epsilon: 1e-5 } as never),
    ).toThrow(/rowCount/);
    guarded.end();
    expect(device.log).toEqual(['upload tokens@0 [5]']);
    expect(device.calls).toContain('abort-capture');
  });

  it('runs what was collected before a download-like interruption, then goes on eagerly', () => {
    const { device, steps } = create();
    warm(steps, 3);
    device.log.length = 0;
    steps.begin('decode');
    steps.upload(tokens, Int32Array.of(9), 0);
    steps.interrupt();
    expect(device.log).toEqual(['upload tokens@0 [9]']);
    steps.run('rms-norm', { input: hidden, output: hidden, rowCount: 1, epsilon: 1e-5 } as never);
    steps.end();
    expect(device.log).toHaveLength(2);
    expect(steps.stats()).toMatchObject({ fallbacks: 1, graphs: 0 });
  });

  it('drops the graphs that use a buffer being disposed', () => {
    const { device, steps } = create();
    warm(steps, 2);
    steps.forget(buffer('unrelated'));
    expect(steps.stats().graphs).toBe(1);
    steps.forget(hidden);
    expect(steps.stats().graphs).toBe(0);
    expect(device.calls.at(-1)).toBe('destroy');
  });

  it('rounds Float32 uploads into an f16/bf16 buffer into the slot as the device stores them', () => {
    const { device, steps } = create();
    const half = buffer('half', 'bf16');
    for (const value of [1.5, 2.5, 3.0000001]) {
      steps.begin('weights');
      steps.upload(half, Float32Array.of(value), 0);
      steps.run('rms-norm', { input: hidden, output: hidden, rowCount: 1, epsilon: 1e-5 } as never);
      steps.run('rms-norm', { input: hidden, output: hidden, rowCount: 2, epsilon: 1e-5 } as never);
      steps.end();
    }
    // eager: the Float32Array as given; captured and replayed: bf16 bits (1.5 = 0x3fc0, 3 = 0x4040)
    expect(device.log.filter((line) => line.startsWith('upload'))).toEqual([
      'upload half@0 [1.5]',
      `upload half@0 [${0x4020}]`,
      `upload half@0 [${0x4040}]`,
    ]);
  });

  it('does not keep a graph of an empty step', () => {
    const { device, steps } = create();
    for (let i = 0; i < 4; i++) {
      steps.begin('idle');
      steps.end();
    }
    expect(device.calls).toEqual(['begin-capture', 'end-capture', 'launch', 'destroy']);
    expect(steps.stats()).toMatchObject({ captures: 1, graphs: 0 });
  });

  it('names the problem for misuse', () => {
    const { steps } = create();
    expect(() => steps.end()).toThrow(BackendError);
    expect(() => steps.begin('')).toThrow(/non-empty string, got ""/);
    steps.begin('decode');
    expect(() => steps.begin('prefill')).toThrow(/graph step 'decode' is still open/);
  });

  it('runs steps eagerly when asked (profiling, graphs turned off)', () => {
    const { device, steps } = create();
    for (const data of [[1], [2], [3]]) {
      steps.begin('decode', true);
      step(steps, data);
      steps.end();
    }
    expect(device.calls).toEqual([]);
    expect(device.log).toHaveLength(12);
  });

  it('keeps a graph per step name up to maxGraphs, dropping the least recently used', () => {
    for (const [maxGraphs, replays] of [
      [2, 6],
      [1, 0],
    ] as const) {
      const { steps } = create(undefined, maxGraphs);
      // two shapes in turn (one row, two rows) under their own names
      for (let s = 0; s < 10; s++) {
        const rows = 1 + (s % 2);
        steps.begin(`decode-${rows}`);
        step(steps, rows === 1 ? [s] : [s, s], rows);
        steps.end();
      }
      expect(steps.stats(), `maxGraphs ${maxGraphs}`).toMatchObject({ replays, fallbacks: 0 });
    }
  });

  it('records operations from outside the backend (a collective) and replays them in place', () => {
    const { device, steps } = create();
    const enqueued: number[] = [];
    const expected: string[] = [];
    for (let s = 0; s < 4; s++) {
      steps.begin('decode');
      expected.push(...step(steps, [s]));
      steps.external('all-reduce', [hidden], [64], () => {
        enqueued.push(s);
        device.collective('all-reduce hidden 64');
      });
      expected.push('all-reduce hidden 64');
      steps.end();
    }
    expect(device.log).toEqual(expected);
    expect(enqueued).toEqual([0, 1]); // eager, then captured; replays launch it with the graph
    steps.begin('decode');
    step(steps, [9]);
    steps.external('all-reduce', [hidden], [32], () => device.collective('all-reduce hidden 32'));
    steps.end();
    expect(device.log.at(-1)).toBe('all-reduce hidden 32');
    expect(steps.stats()).toMatchObject({ replays: 2, fallbacks: 1 });
  });

  it('property: any sequence of steps executes exactly the operations issued, in order', () => {
    const variant = fc.record({
      collective: fc.constantFrom(0, 8, 16),
      rows: fc.integer({ min: 1, max: 3 }),
      extraFill: fc.boolean(),
      name: fc.constantFrom('decode', 'other'),
      interrupt: fc.boolean(),
      data: fc.array(fc.integer({ min: -5, max: 5 }), { minLength: 1, maxLength: 3 }),
    });
    fc.assert(
      fc.property(
        fc.array(variant, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        (sequence, segment, maxGraphs) => {
          const { device, steps } = create(segment, maxGraphs);
          const expected: string[] = [];
          for (const s of sequence) {
            steps.begin(s.name);
            expected.push(...step(steps, s.data, s.rows));
            if (s.collective > 0) {
              steps.external('all-reduce', [hidden], [s.collective], () =>
                device.collective(`all-reduce hidden ${s.collective}`),
              );
              expected.push(`all-reduce hidden ${s.collective}`);
            }
            if (s.interrupt) steps.interrupt();
            if (s.extraFill) {
              steps.fill(tokens, 1, { elementOffset: 0, elementCount: 2 });
              expected.push('fill tokens 1 0+2');
            }
            steps.end();
          }
          expect(device.log).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});
