import { ValidationError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import type { BufferDType, DeviceBuffer } from './backend.js';
import { checkCopyOptions, checkCreateBufferOptions, checkFillValue, checkUploadData } from './buffer-checks.js';

function buffer<D extends BufferDType>(dtype: D, elementCount = 8, label = 'b'): DeviceBuffer<D> {
  const bytes = dtype === 'f32' || dtype === 'i32' ? 4 : 2;
  return { dtype, elementCount, byteLength: elementCount * bytes, label, disposed: false };
}

/** The ValidationError `run` throws (fails the test when it throws nothing or something else). */
function validationErrorOf(run: () => unknown): ValidationError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('checkCreateBufferOptions', () => {
  it('settles the label and the bytes of each dtype', () => {
    expect(checkCreateBufferOptions({ dtype: 'bf16', elementCount: 3 })).toEqual({
      dtype: 'bf16',
      elementCount: 3,
      label: 'bf16[3]',
      byteLength: 6,
    });
    expect(checkCreateBufferOptions({ dtype: 'i32', elementCount: 5, label: 'ids' })).toMatchObject({
      label: 'ids',
      byteLength: 20,
    });
  });

  it('names the field and the value of bad options', () => {
    const dtype = validationErrorOf(() => checkCreateBufferOptions({ dtype: 'f64' as never, elementCount: 1 }));
    expect(dtype.message).toBe('dtype: expected f32, f16, bf16 or i32, got f64');
    expect(dtype.issues[0]?.path).toBe('$.dtype');
    for (const elementCount of [0, -1, 1.5, Number.NaN]) {
      const error = validationErrorOf(() => checkCreateBufferOptions({ dtype: 'f32', elementCount }));
      expect(error.message).toBe(`elementCount: expected a positive integer, got ${elementCount}`);
      expect(error.issues[0]?.path).toBe('$.elementCount');
    }
  });
});

describe('checkUploadData', () => {
  it('encodes f32 data into 16-bit buffers and stores everything else as it is', () => {
    expect(checkUploadData(buffer('f16'), new Float32Array(2), 0)).toBe('encode');
    expect(checkUploadData(buffer('bf16'), new Float32Array(2), 6)).toBe('encode');
    expect(checkUploadData(buffer('bf16'), new Uint16Array(8), 0)).toBe('raw');
    expect(checkUploadData(buffer('f32'), new Float32Array(8), 0)).toBe('raw');
    expect(checkUploadData(buffer('i32'), new Int32Array(1), 7)).toBe('raw');
  });

  it('names the buffer, its dtype and the array it got', () => {
    const cases: [BufferDType, Float32Array | Uint16Array | Int32Array, string][] = [
      ['i32', new Float32Array(1), 'Int32Array'],
      ['f32', new Uint16Array(1), 'Float32Array'],
      ['f16', new Int32Array(1), 'Float32Array or Uint16Array (raw bits)'],
    ];
    for (const [dtype, data, expected] of cases) {
      const error = validationErrorOf(() => checkUploadData(buffer(dtype, 8, 'weights'), data, 0));
      expect(error.message).toBe(
        `upload: buffer 'weights' of dtype ${dtype} takes ${expected}, got ${data.constructor.name}`,
      );
      expect(error.issues[0]?.path).toBe('$.data');
    }
  });

  it('rejects a range past the end of the buffer', () => {
    const error = validationErrorOf(() => checkUploadData(buffer('f32', 4), new Float32Array(3), 2));
    expect(error.message).toBe("upload: range [2, 5) is outside buffer 'b' of 4 elements");
  });
});

describe('checkFillValue', () => {
  it('takes any number for float buffers and 32-bit integers for i32 ones', () => {
    for (const value of [0.5, -1e30, Number.NaN]) expect(() => checkFillValue(buffer('bf16'), value)).not.toThrow();
    for (const value of [-(2 ** 31), 2 ** 31 - 1, 0]) expect(() => checkFillValue(buffer('i32'), value)).not.toThrow();
    for (const value of [0.5, 2 ** 31, -(2 ** 31) - 1]) {
      const error = validationErrorOf(() => checkFillValue(buffer('i32', 8, 'ids'), value));
      expect(error.message).toBe(`fill: value ${value} is not a 32-bit integer for i32 buffer 'ids'`);
    }
  });
});

describe('checkCopyOptions', () => {
  it('needs one dtype on both sides and both ranges inside their buffers', () => {
    const copy = { sourceOffset: 0, destinationOffset: 2, elementCount: 4 };
    expect(() => checkCopyOptions({ source: buffer('f16'), destination: buffer('f16'), ...copy })).not.toThrow();
    const dtype = validationErrorOf(() =>
      checkCopyOptions({ source: buffer('f16'), destination: buffer('bf16', 8, 'to'), ...copy }),
    );
    expect(dtype.message).toBe("copy: destination 'to' has dtype bf16, expected the source's f16");
    const range = validationErrorOf(() =>
      checkCopyOptions({ source: buffer('f32', 8, 'from'), destination: buffer('f32', 5, 'to'), ...copy }),
    );
    expect(range.message).toBe("copy destination: range [2, 6) is outside buffer 'to' of 5 elements");
  });
});
