import type { DeviceBuffer } from '@fairkv/kernels';
import { describe, expect, it } from 'vitest';
import { toNativeKernelArgs } from './native-kernel-args.js';

const buffer = (dtype: DeviceBuffer['dtype'], label: string): DeviceBuffer => ({
  dtype,
  elementCount: 4,
  byteLength: 16,
  label,
  disposed: false,
});

describe('toNativeKernelArgs', () => {
  it('turns buffers into pointers plus dtype codes and keeps numbers', () => {
    const pointers = new Map<string, bigint>([
      ['weight', 0x1000n],
      ['input', 0x2000n],
      ['output', 0x3000n],
    ]);
    const native = toNativeKernelArgs(
      {
        input: buffer('f32', 'input'),
        weight: buffer('bf16', 'weight'),
        output: buffer('f32', 'output'),
        rowCount: 7,
        innerSize: 3,
        outerSize: 5,
      },
      (b) => pointers.get(b.label)!,
    );
    expect(native).toEqual({
      input: 0x2000n,
      inputDType: 0,
      weight: 0x1000n,
      weightDType: 2,
      output: 0x3000n,
      outputDType: 0,
      rowCount: 7,
      innerSize: 3,
      outerSize: 5,
    });
  });

  it("maps prefill's kvRounding and productRounding to codes", () => {
    expect(toNativeKernelArgs({ kvRounding: 'bf16' }, () => 0n)).toEqual({ kvRounding: 1 });
    expect(toNativeKernelArgs({ kvRounding: 'f16' }, () => 0n)).toEqual({ kvRounding: 2 });
    expect(toNativeKernelArgs({ productRounding: 'bf16' }, () => 0n)).toEqual({ productRounding: 1 });
    expect(toNativeKernelArgs({ productRounding: 'f16' }, () => 0n)).toEqual({ productRounding: 2 });
    expect(toNativeKernelArgs({ scale: 0.5 }, () => 0n)).toEqual({ scale: 0.5 });
  });

  it('maps the RoPE layout to halfSplit', () => {
    expect(toNativeKernelArgs({ layout: 'half-split' }, () => 0n)).toEqual({ halfSplit: 1 });
    expect(toNativeKernelArgs({ layout: 'adjacent' }, () => 0n)).toEqual({ halfSplit: 0 });
  });
});
