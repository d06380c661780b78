/**
 * The graph-step part of the conformance suite (`Backend.beginGraphStep`), for backends that declare
 * `graphSteps`: decode-like steps (K/V appends and ragged decode attention over growing paged
 * sequences, two layers, then a norm) give exactly the results of the same operations run one by one,
 * whether a step was run eagerly, captured or replayed, and when steps change shape, read back in
 * the middle, or lose a buffer.
 *
 * @packageDocumentation
 */
import { BackendError } from '@fairkv/core';
import { expect, it } from 'vitest';
import type { Backend, BackendCapabilities, DeviceBuffer } from '../backend.js';
import { DECODE_PAIR_FIELDS, KV_APPEND_ENTRY_FIELDS, kvBlockElementCount } from '../kv-layout.js';
import { randomPagedLayout } from './paged-layout.js';
import { createRandom, freshSeed, type Random } from './random.js';

const HEAD_DIM = 128;
const GROUP = 8;
const BLOCK_SIZE = 16;

/** Layers and kv heads of a rig, and the longest sequence it starts with. */
interface RigShape {
  layers: number;
  kvHeads: number;
  longest: number;
}
const DECODE_SHAPE: RigShape = { layers: 2, kvHeads: 2, longest: 300 };

/** The buffers of one run of decode-like steps (a fresh set per run, so runs never share state). */
class DecodeRig {
  readonly #backend: Backend;
  readonly #random: Random;
  readonly rows: number;
  readonly lengths: number[];
  readonly #shape: RigShape;
  readonly #layout: ReturnType<typeof randomPagedLayout>;
  readonly #buffers: DeviceBuffer[] = [];
  readonly pool: DeviceBuffer;
  readonly table: DeviceBuffer<'i32'>;
  readonly key: DeviceBuffer<'f32'>;
  readonly value: DeviceBuffer<'f32'>;
  readonly query: DeviceBuffer<'f32'>;
  readonly output: DeviceBuffer<'f32'>;
  readonly normed: DeviceBuffer<'f32'>;
  readonly normWeight: DeviceBuffer<'f32'>;
  entries: DeviceBuffer<'i32'>;
  readonly pairs: DeviceBuffer<'i32'>;

  constructor(
    backend: Backend,
    seed: number,
    rows: number,
    dtype: 'f32' | 'bf16',
    reserve: number,
    shape: RigShape = DECODE_SHAPE,
  ) {
    this.#backend = backend;
    this.#random = createRandom(seed);
    this.rows = rows;
    this.#shape = shape;
    const random = this.#random;
    const { layers, kvHeads, longest } = shape;
    // per (layer, row, kv head): a sequence with room for `reserve` more tokens
    this.lengths = Array.from({ length: layers * rows * kvHeads }, () =>
      random.pick([1, Math.min(17, longest), random.integer(1, longest)]),
    );
    this.#layout = randomPagedLayout(
      random,
      BLOCK_SIZE,
      this.lengths.map((length) => length + reserve),
      2,
    );
    const create = <D extends 'f32' | 'bf16' | 'i32'>(dtype: D, elementCount: number, label: string) => {
      const buffer = backend.createBuffer({ dtype, elementCount, label });
      backend.fill(buffer, 0);
      this.#buffers.push(buffer);
      return buffer;
    };
    const blockElements = kvBlockElementCount(BLOCK_SIZE, HEAD_DIM);
    this.pool = create(dtype, this.#layout.blockCount * blockElements, 'graph-pool');
    backend.upload(this.pool, random.floats(this.#layout.blockCount * blockElements, -2, 2));
    this.table = create('i32', this.#layout.blockTable.length, 'graph-table');
    backend.upload(this.table, this.#layout.blockTable);
    const kvWidth = rows * kvHeads * HEAD_DIM;
    this.key = create('f32', kvWidth, 'graph-key');
    this.value = create('f32', kvWidth, 'graph-value');
    this.query = create('f32', kvWidth * GROUP, 'graph-query');
    this.output = create('f32', kvWidth * GROUP, 'graph-output');
    this.normed = create('f32', kvWidth * GROUP, 'graph-normed');
    this.normWeight = create('f32', HEAD_DIM, 'graph-norm-weight');
    backend.upload(this.normWeight, random.floats(HEAD_DIM, 0.5, 1.5));
    this.entries = create('i32', rows * kvHeads * KV_APPEND_ENTRY_FIELDS, 'graph-entries');
    this.pairs = create('i32', rows * kvHeads * DECODE_PAIR_FIELDS, 'graph-pairs');
  }

  /** A new entries buffer (the old one disposed): a graph that used it must not be replayed. */
  replaceEntries(): void {
    const old = this.entries;
    this.entries = this.#backend.createBuffer({
      dtype: 'i32',
      elementCount: old.elementCount,
      label: 'graph-entries-2',
    });
    this.#buffers.push(this.entries);
    this.#backend.disposeBuffer(old);
  }

  /**
   * One step over the first `rows` rows: per layer, new K/V appended at each sequence's end, then
   * attention over the grown sequences; then a norm of the last layer's output. Lengths grow by one.
   */
  step(rows = this.rows, readMidway?: (outputs: Promise<Float32Array>) => void): void {
    const b = this.#backend;
    const random = this.#random;
    const { layers, kvHeads } = this.#shape;
    const kvWidth = rows * kvHeads * HEAD_DIM;
    b.upload(this.key, random.floats(kvWidth, -2, 2));
    b.upload(this.value, random.floats(kvWidth, -2, 2));
    b.upload(this.query, random.floats(kvWidth * GROUP, -2, 2));
    for (let layer = 0; layer < layers; layer++) {
      const entries: number[] = [];
      const pairs: number[] = [];
      for (let row = 0; row < rows; row++) {
        for (let head = 0; head < kvHeads; head++) {
          const sequence = (layer * this.rows + row) * kvHeads + head;
          const offset = this.#layout.tableOffsets[sequence]!;
          entries.push(row, head, this.lengths[sequence]!, offset);
          pairs.push(row, head, this.lengths[sequence]! + 1, offset);
        }
      }
      const pool = {
        pool: this.pool,
        blockTable: this.table,
        blockCount: this.#layout.blockCount,
        blockSize: BLOCK_SIZE,
      };
      const shape = { headDim: HEAD_DIM, blockTableLength: this.#layout.blockTable.length };
      b.upload(this.entries, Int32Array.from(entries));
      b.run('kv-append', {
        ...pool,
        ...shape,
        key: this.key,
        value: this.value,
        entries: this.entries,
        rowCount: rows,
        kvHeadCount: kvHeads,
        entryCount: entries.length / KV_APPEND_ENTRY_FIELDS,
      });
      b.upload(this.pairs, Int32Array.from(pairs));
      // the last layer's attention is a result; the earlier ones are overwritten by the norm
      const output = layer === layers - 1 ? this.output : this.normed;
      b.run('ragged-decode-attention', {
        ...pool,
        ...shape,
        query: this.query,
        output,
        pairs: this.pairs,
        rowCount: rows,
        kvHeadCount: kvHeads,
        groupSize: GROUP,
        pairCount: pairs.length / DECODE_PAIR_FIELDS,
        scale: 1 / Math.sqrt(HEAD_DIM),
      });
      if (layer === 0 && readMidway) readMidway(b.download(output, { elementCount: kvWidth * GROUP }));
    }
    b.run('rms-norm', {
      input: this.output,
      weight: this.normWeight,
      output: this.normed,
      rowCount: rows * kvHeads * GROUP,
      size: HEAD_DIM,
      epsilon: 1e-5,
    });
    for (let row = 0; row < rows; row++) {
      for (let layer = 0; layer < layers; layer++) {
        for (let head = 0; head < kvHeads; head++) this.lengths[(layer * this.rows + row) * kvHeads + head]!++;
      }
    }
  }

  /** The step's results: attention output and its norm. */
  async results(): Promise<Float32Array[]> {
    return [await this.#backend.download(this.output), await this.#backend.download(this.normed)];
  }

  dispose(): void {
    for (const buffer of this.#buffers) this.#backend.disposeBuffer(buffer);
  }
}

/**
 * Runs `steps` (row counts, one per step) on a fresh rig, as graph steps or not, and returns each
 * step's results. `midway`: steps whose first layer's output is read back inside the step.
 */
async function runSteps(
  backend: Backend,
  name: string,
  seed: number,
  steps: number[],
  graph: boolean,
  dtype: 'f32' | 'bf16',
  options: { midway?: Set<number>; replaceEntriesAt?: number; shape?: RigShape } = {},
): Promise<Float32Array[][]> {
  const rig = new DecodeRig(backend, seed, Math.max(...steps), dtype, steps.length, options.shape);
  const results: Float32Array[][] = [];
  try {
    for (const [index, rows] of steps.entries()) {
      if (index === options.replaceEntriesAt) rig.replaceEntries();
      let midway: Promise<Float32Array> | undefined;
      if (graph) backend.beginGraphStep!(name);
      try {
        rig.step(rows, options.midway?.has(index) ? (read) => (midway = read) : undefined);
      } finally {
        if (graph) backend.endGraphStep!();
      }
      const stepResults = await rig.results();
      if (midway) stepResults.push(await midway);
      results.push(stepResults);
    }
  } finally {
    rig.dispose();
  }
  return results;
}

/** Every result of every step equal, value for value. */
function expectSameResults(graphed: Float32Array[][], eager: Float32Array[][], seed: number): void {
  expect(graphed.length).toBe(eager.length);
  for (const [step, results] of graphed.entries()) {
    expect(results.length, `step ${step}`).toBe(eager[step]!.length);
    for (const [i, values] of results.entries()) {
      const expected = eager[step]![i]!;
      expect(values.length, `seed ${seed}, step ${step}, result ${i}: length`).toBe(expected.length);
      // first differing element, if any (a loop: the results hold millions of values)
      let differs = -1;
      for (let k = 0; k < values.length && differs < 0; k++) if (!Object.is(values[k], expected[k])) differs = k;
      const where = differs < 0 ? 'none' : `${differs}: ${values[differs]} instead of ${expected[differs]}`;
      expect(where, `seed ${seed}, step ${step}, result ${i}: first differing value`).toBe('none');
    }
  }
}

/** Registers the graph-step tests; `backend()` returns the suite's shared backend. */
export function describeGraphStepContract(backend: () => Backend, capabilities: BackendCapabilities): void {
  const skip = capabilities.graphSteps !== true;
  const suffix = skip ? ' (skipped: graph steps not declared)' : '';
  const dtype = capabilities.storageDTypes.includes('bf16') ? 'bf16' : 'f32';
  const headDimOk = capabilities.headDims === 'any' || capabilities.headDims.includes(HEAD_DIM);

  it.skipIf(skip || !headDimOk)(
    `replays decode-like steps with exactly the results of eager runs${suffix}`,
    async () => {
      const b = backend();
      expect(typeof b.beginGraphStep).toBe('function');
      const before = b.graphStats?.();
      const seed = freshSeed();
      const steps = [3, 3, 3, 3, 3, 3];
      const graphed = await runSteps(b, `replay-${seed}`, seed, steps, true, dtype);
      const eager = await runSteps(b, `replay-${seed}`, seed, steps, false, dtype);
      expectSameResults(graphed, eager, seed);
      const after = b.graphStats!();
      // the first step eager, the second captured, the rest replayed
      expect(after.captures - before!.captures, 'captures').toBe(1);
      expect(after.replays - before!.replays, 'replays').toBe(4);
      expect(after.fallbacks - before!.fallbacks, 'fallbacks').toBe(0);
    },
  );

  it.skipIf(skip || !headDimOk)(
    `stays exact when steps change shape, read back midway or lose a buffer${suffix}`,
    async () => {
      const b = backend();
      const seed = freshSeed();
      const steps = [2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2];
      const options = { midway: new Set([3, 8]), replaceEntriesAt: 6 };
      const graphed = await runSteps(b, `changes-${seed}`, seed, steps, true, dtype, options);
      const eager = await runSteps(b, `changes-${seed}`, seed, steps, false, dtype, options);
      expectSameResults(graphed, eager, seed);
    },
  );

  it.skipIf(skip || !headDimOk)(
    `replays steps of a single decode attention over 4,000 pairs exactly${suffix}`,
    async () => {
      // one attention call per step (the same call again at every launch), over more pairs than a
      // per-block work plan in on-chip memory holds
      const b = backend();
      const seed = freshSeed();
      const steps = [1000, 1000, 1000, 1000];
      const options = { shape: { layers: 1, kvHeads: 4, longest: 8 } };
      const graphed = await runSteps(b, `single-${seed}`, seed, steps, true, dtype, options);
      const eager = await runSteps(b, `single-${seed}`, seed, steps, false, dtype, options);
      expectSameResults(graphed, eager, seed);
    },
  );

  it.skipIf(skip)(`rejects nested and unopened graph steps with a BackendError${suffix}`, () => {
    const b = backend();
    expect(() => b.endGraphStep!()).toThrow(BackendError);
    b.beginGraphStep!('outer');
    try {
      expect(() => b.beginGraphStep!('inner')).toThrow(/graph step 'outer' is still open/);
    } finally {
      b.endGraphStep!();
    }
  });
}
