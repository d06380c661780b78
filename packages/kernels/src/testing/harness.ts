/**
 * Buffer helpers of the conformance suite: inputs uploaded with padding, outputs poisoned with NaN
 * (i32 outputs with `POISON_I32`) before every run, and assertions that name the run's seed.
 *
 * @packageDocumentation
 */
import type { Backend, BufferDType, DeviceBuffer } from '../backend.js';
import { type Comparison, compareOutputs } from './tolerance.js';

/** Extra elements every buffer gets beyond its shape; kernels must leave them untouched. */
export const PADDING = 3;
/** Value i32 outputs are poisoned with. */
export const POISON_I32 = -2147483648;

/** A failed conformance check; the message names the kernel, the case and the seed. */
export class ConformanceFailure extends Error {}

/** Everything a case needs: the backend, a label for messages, and created buffers to release. */
export class CaseContext {
  readonly #buffers: DeviceBuffer[] = [];
  constructor(
    readonly backend: Backend,
    readonly label: string,
    readonly seed: number,
  ) {}

  /** Creates a padded buffer holding `data` (padding poisoned). */
  input<D extends BufferDType>(dtype: D, data: Float32Array | Int32Array, name: string): DeviceBuffer<D> {
    const buffer = this.output(dtype, data.length, name);
    if (data.length > 0) this.backend.upload(buffer, data);
    return buffer;
  }

  /** Creates a padded buffer of `count` elements, every element poisoned (NaN, or `POISON_I32`). */
  output<D extends BufferDType>(dtype: D, count: number, name: string): DeviceBuffer<D> {
    const buffer = this.backend.createBuffer({ dtype, elementCount: count + PADDING, label: `${this.label}:${name}` });
    this.#buffers.push(buffer);
    this.backend.fill(buffer, dtype === 'i32' ? POISON_I32 : Number.NaN);
    return buffer;
  }

  /** Downloads a buffer whole (padding included). */
  async read<D extends BufferDType>(buffer: DeviceBuffer<D>) {
    return this.backend.download(buffer);
  }

  /** Throws a {@link ConformanceFailure} with the case, the seed and `message`. */
  fail(message: string): never {
    throw new ConformanceFailure(
      `${this.label}: ${message} (seed ${this.seed}; rerun with FAIRKV_CONFORMANCE_SEED=${this.seed})`,
    );
  }

  /** Asserts `actual` matches `expected` within `tolerance` and the padding after it is still poisoned. */
  expectClose(
    name: string,
    actual: Float32Array,
    expected: ArrayLike<number>,
    tolerance: number,
    allowance?: ArrayLike<number>,
  ): Comparison {
    const comparison = this.expectMatch(name, actual, expected, tolerance, allowance);
    this.expectPoisoned(name, actual, expected.length, actual.length);
    return comparison;
  }

  /**
   * Asserts the first `expected.length` elements of `actual` match `expected` within `tolerance`, beyond
   * a per-element absolute `allowance` where given ({@link compareOutputs}).
   */
  expectMatch(
    name: string,
    actual: ArrayLike<number>,
    expected: ArrayLike<number>,
    tolerance: number,
    allowance?: ArrayLike<number>,
  ): Comparison {
    const comparison = compareOutputs(actual, expected, expected.length, allowance);
    if (comparison.nonFiniteCount > 0 || !(comparison.maxError <= tolerance)) {
      const i = comparison.worstIndex;
      const beyond = allowance === undefined ? '' : ` beyond the allowed ${allowance[i]}`;
      this.fail(
        `${name}: relative error ${comparison.maxError.toExponential(3)}${beyond} > ${tolerance} at element ${i} (got ${actual[i]}, expected ${expected[i]}; ${comparison.nonFiniteCount} non-finite of ${expected.length})`,
      );
    }
    return comparison;
  }

  /** Asserts elements `[from, to)` of a downloaded float buffer are still NaN (never written). */
  expectPoisoned(name: string, actual: Float32Array | Int32Array, from: number, to: number): void {
    for (let i = from; i < to; i++) {
      const untouched = actual instanceof Int32Array ? actual[i] === POISON_I32 : Number.isNaN(actual[i]);
      if (!untouched) this.fail(`${name}: element ${i} outside the output shape was written (${actual[i]})`);
    }
  }

  /** Releases every buffer this case created. */
  dispose(): void {
    for (const buffer of this.#buffers) this.backend.disposeBuffer(buffer);
  }
}
