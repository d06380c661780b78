/**
 * The buffer and queue half of the conformance suite: round trips per dtype, ranges, fill, copy,
 * exact memory accounting, argument validation, foreign and disposed buffers, call-order semantics.
 *
 * @packageDocumentation
 */
import type { DType } from '@fairkv/core';
import { expect, it } from 'vitest';
import type { Backend, BackendCapabilities, BackendFactory } from '../backend.js';
import { f32ToBf16Bits, f32ToF16Bits, roundToDType } from '../half-precision.js';
import { createRandom, freshSeed } from './random.js';

/** Expects `action` to throw (or reject with) a fairkv error of `code`. */
async function expectCode(action: () => unknown, code: string): Promise<unknown> {
  try {
    await action();
  } catch (error) {
    expect((error as { code?: string }).code, String(error)).toBe(code);
    return error;
  }
  throw new Error(`expected an error with code ${code}, but nothing was thrown`);
}

/** Registers the buffer-contract tests; `backend()` returns the suite's shared backend. */
export function describeBufferContract(
  backend: () => Backend,
  createBackend: BackendFactory,
  capabilities: BackendCapabilities,
): void {
  it('declares the capabilities it was described with', () => {
    expect(backend().capabilities).toEqual(capabilities);
    expect(backend().name).toBe(capabilities.name);
    expect(capabilities.storageDTypes).toContain('f32');
  });

  for (const dtype of ['f32', 'f16', 'bf16'] as const satisfies readonly DType[]) {
    it.skipIf(!capabilities.storageDTypes.includes(dtype))(
      `round-trips ${dtype} values, rounding to nearest even`,
      async () => {
        const random = createRandom(freshSeed());
        const values = random.floats(37, -1000, 1000);
        values[0] = 0;
        values[1] = -0.5;
        const expected = Array.from(values, (value) => roundToDType(dtype, value));
        const buffer = backend().createBuffer({ dtype, elementCount: 40 });
        backend().fill(buffer, Number.NaN);
        backend().upload(buffer, values, 2);
        values.fill(7); // upload copied the data at call time
        const whole = await backend().download(buffer);
        expect(Number.isNaN(whole[0]!) && Number.isNaN(whole[1]!) && Number.isNaN(whole[39]!)).toBe(true);
        expect(Array.from(whole.subarray(2, 39))).toEqual(expected);
        const part = await backend().download(buffer, { elementOffset: 4, elementCount: 5 });
        expect(Array.from(part)).toEqual(expected.slice(2, 7));
        backend().disposeBuffer(buffer);
      },
    );
  }

  it('rounds f16/bf16 uploads exactly as roundToDType and stores raw bits as given', async () => {
    for (const dtype of capabilities.storageDTypes.filter((d) => d !== 'f32')) {
      const random = createRandom(freshSeed());
      const values = random.floats(64, -70000, 70000);
      const buffer = backend().createBuffer({ dtype, elementCount: 64 });
      backend().upload(buffer, values);
      const rounded = await backend().download(buffer);
      expect(Array.from(rounded)).toEqual(Array.from(values, (v) => roundToDType(dtype, v)));
      const encode = dtype === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
      backend().upload(buffer, Uint16Array.from(values, encode));
      expect(Array.from(await backend().download(buffer))).toEqual(Array.from(rounded));
      // raw bits at an offset (a fused projection's parts, uploaded one after another)
      backend().fill(buffer, 0);
      backend().upload(buffer, Uint16Array.from(values.subarray(0, 20), encode), 40);
      const placed = await backend().download(buffer);
      expect(Array.from(placed.subarray(40, 60))).toEqual(Array.from(rounded.subarray(0, 20)));
      expect(Array.from(placed.subarray(0, 40)).every((value) => value === 0)).toBe(true);
      expect(Array.from(placed.subarray(60)).every((value) => value === 0)).toBe(true);
      backend().disposeBuffer(buffer);
    }
  });

  it('round-trips i32, fills ranges and copies between buffers', async () => {
    const source = backend().createBuffer({ dtype: 'i32', elementCount: 9 });
    const target = backend().createBuffer({ dtype: 'i32', elementCount: 9 });
    backend().upload(source, Int32Array.from([1, -2, 3, 2147483647, -2147483648, 6, 7, 8, 9]));
    backend().fill(target, -1);
    backend().fill(target, 5, { elementOffset: 7 });
    backend().copy({ source, sourceOffset: 1, destination: target, destinationOffset: 2, elementCount: 4 });
    expect(Array.from(await backend().download(target))).toEqual([-1, -1, -2, 3, 2147483647, -2147483648, -1, 5, 5]);
    backend().disposeBuffer(source);
    backend().disposeBuffer(target);
  });

  it('accounts memory exactly and releases it on disposeBuffer', () => {
    const before = backend().memory();
    const a = backend().createBuffer({ dtype: 'f32', elementCount: 1001 });
    const b = backend().createBuffer({ dtype: 'i32', elementCount: 3 });
    expect(a.byteLength).toBe(4004);
    expect(backend().memory().allocatedBytes).toBe(before.allocatedBytes + 4016);
    expect(backend().memory().bufferCount).toBe(before.bufferCount + 2);
    expect(backend().memory().peakAllocatedBytes).toBeGreaterThanOrEqual(before.allocatedBytes + 4016);
    backend().disposeBuffer(a);
    backend().disposeBuffer(a);
    expect(a.disposed).toBe(true);
    expect(backend().memory().allocatedBytes).toBe(before.allocatedBytes + 12);
    backend().disposeBuffer(b);
    expect(backend().memory()).toMatchObject({
      allocatedBytes: before.allocatedBytes,
      bufferCount: before.bufferCount,
    });
  });

  it('runs operations in call order and copies uploads at call time', async () => {
    const target = backend().createBuffer({ dtype: 'f32', elementCount: 4 });
    const addend = backend().createBuffer({ dtype: 'f32', elementCount: 4 });
    const host = Float32Array.from([1, 2, 3, 4]);
    backend().upload(target, host);
    backend().upload(addend, host);
    host.fill(100);
    backend().run('add-in-place', { target, addend, elementCount: 4 });
    backend().upload(addend, Float32Array.from([10, 10, 10, 10]));
    backend().run('add-in-place', { target, addend, elementCount: 3 });
    const result = backend().download(target);
    backend().fill(target, 0);
    expect(Array.from(await result)).toEqual([12, 14, 16, 8]);
    await backend().synchronize();
    backend().disposeBuffer(target);
    backend().disposeBuffer(addend);
  });

  it('profiles the operations enqueued between startProfile and stopProfile, where it can', async () => {
    const b = backend();
    if (!b.startProfile || !b.stopProfile) return; // optional in the contract
    const input = b.createBuffer({ dtype: 'f32', elementCount: 2 * 64 });
    const weight = b.createBuffer({ dtype: 'f32', elementCount: 32 * 64 });
    const output = b.createBuffer({ dtype: 'f32', elementCount: 2 * 32 });
    b.upload(input, new Float32Array(2 * 64).fill(1)); // before the window
    b.startProfile();
    b.upload(weight, new Float32Array(32 * 64).fill(0.5));
    b.fill(output, 0);
    for (let i = 0; i < 3; i++) b.run('matmul', { input, weight, output, rowCount: 2, innerSize: 64, outerSize: 32 });
    const profile = await b.stopProfile();
    b.fill(output, 1); // after the window
    const counts = Object.fromEntries(profile.operations.map((operation) => [operation.name, operation.count]));
    expect(counts).toEqual({ upload: 1, fill: 1, matmul: 3 });
    const times = profile.operations.map((operation) => operation.milliseconds);
    expect(times).toEqual([...times].sort((x, y) => y - x));
    expect(profile.busyMilliseconds).toBeGreaterThanOrEqual(0);
    expect(profile.spanMilliseconds + 1e-6).toBeGreaterThanOrEqual(profile.busyMilliseconds);
    if (profile.calls !== undefined) {
      // one by one, in enqueue order, each inside the window
      expect(profile.calls.map((call) => call.name)).toEqual(['upload', 'fill', 'matmul', 'matmul', 'matmul']);
      expect(profile.calls[0]!.startMilliseconds).toBe(0);
      for (const [i, call] of profile.calls.entries()) {
        expect(call.milliseconds).toBeGreaterThanOrEqual(0);
        if (i > 0) expect(call.startMilliseconds).toBeGreaterThanOrEqual(profile.calls[i - 1]!.startMilliseconds);
        expect(call.startMilliseconds + call.milliseconds).toBeLessThanOrEqual(profile.spanMilliseconds + 1e-3);
      }
      const matmulTotal = profile.calls
        .filter((call) => call.name === 'matmul')
        .reduce((t, c) => t + c.milliseconds, 0);
      const matmul = profile.operations.find((operation) => operation.name === 'matmul')!;
      expect(matmulTotal).toBeCloseTo(matmul.milliseconds, 3);
    }
    const empty = await b.stopProfile();
    expect(empty.operations).toEqual([]);
    expect(empty.calls ?? []).toEqual([]);
    for (const buffer of [input, weight, output]) b.disposeBuffer(buffer);
  });

  it('rejects bad arguments with ValidationErrors that name the field', async () => {
    await expectCode(() => backend().createBuffer({ dtype: 'f32', elementCount: 0 }), 'FAIRKV_VALIDATION');
    const small = backend().createBuffer({ dtype: 'f32', elementCount: 4 });
    const weight = backend().createBuffer({ dtype: 'i32', elementCount: 4 });
    await expectCode(() => backend().upload(small, new Float32Array(5)), 'FAIRKV_VALIDATION');
    await expectCode(() => backend().download(small, { elementOffset: 3, elementCount: 2 }), 'FAIRKV_VALIDATION');
    const error = (await expectCode(
      () => backend().run('matmul', { input: small, weight, output: small, rowCount: 2, innerSize: 2, outerSize: 2 }),
      'FAIRKV_VALIDATION',
    )) as { issues: { path: string }[] };
    // a wrong dtype, and an output that is also an input
    expect(error.issues.map((issue) => issue.path)).toEqual(['$.weight', '$.output']);
    // split outputs: a width without its output, an output without its width, output3 without output2
    const other = backend().createBuffer({ dtype: 'f32', elementCount: 4 });
    const weights = backend().createBuffer({ dtype: 'f32', elementCount: 16 });
    const split = (extra: object) =>
      expectCode(
        () =>
          backend().run('matmul', {
            input: small,
            weight: weights,
            output: other,
            rowCount: 1,
            innerSize: 2,
            outerSize: 2,
            ...extra,
          }),
        'FAIRKV_VALIDATION',
      ) as Promise<{ issues: { path: string; message: string }[] }>;
    expect((await split({ outerSize2: 2 })).issues.map((issue) => issue.path)).toEqual(['$.output2']);
    expect((await split({ output2: small })).issues.map((issue) => issue.path)).toEqual(['$.output2', '$.outerSize2']);
    expect((await split({ output3: small, outerSize3: 2 })).issues.map((issue) => issue.path)).toEqual([
      '$.output3',
      '$.output3',
    ]);
    // the weight must hold every output's rows
    const wide = backend().createBuffer({ dtype: 'f32', elementCount: 8 });
    const tooFew = (await split({ output2: wide, outerSize2: 8 })).issues;
    expect(tooFew.map((issue) => issue.path)).toEqual(['$.weight']);
    expect(/at least 20 elements/.test(tooFew[0]!.message)).toBe(true);
    for (const buffer of [other, weights, wide]) backend().disposeBuffer(buffer);
    const error2 = (await expectCode(
      () => backend().run('swiglu', { gate: small, up: small, output: small, elementCount: 5 }),
      'FAIRKV_VALIDATION',
    )) as { issues: { path: string }[] };
    expect(error2.issues.map((issue) => issue.path)).toEqual(['$.gate', '$.up', '$.output']);
    backend().disposeBuffer(small);
    backend().disposeBuffer(weight);
  });

  it('refuses buffers of another backend and calls after dispose', async () => {
    const other = await createBackend();
    const foreign = other.createBuffer({ dtype: 'f32', elementCount: 4 });
    const own = backend().createBuffer({ dtype: 'f32', elementCount: 4 });
    await expectCode(
      () => backend().run('add-in-place', { target: own, addend: foreign, elementCount: 4 }),
      'FAIRKV_BACKEND',
    );
    other.dispose();
    other.dispose();
    expect(foreign.disposed).toBe(true);
    await expectCode(() => other.createBuffer({ dtype: 'f32', elementCount: 1 }), 'FAIRKV_BACKEND');
    backend().disposeBuffer(own);
  });
}
