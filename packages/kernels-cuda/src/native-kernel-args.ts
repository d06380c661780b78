/**
 * Translation of the contract's kernel arguments ({@link KernelArgsMap}) into the flat objects the
 * addon's `run` reads: every buffer becomes its device pointer plus a `<field>DType` code, RoPE's
 * layout becomes `halfSplit`, numbers pass through unchanged.
 *
 * @packageDocumentation
 */
import type { DeviceBuffer } from '@fairkv/kernels';
import { NativeDTypeCode, type NativeKernelArgs } from './native.js';

/** Whether a value is a device buffer (any backend's). */
export function isDeviceBuffer(value: unknown): value is DeviceBuffer {
  return typeof value === 'object' && value !== null && 'dtype' in value && 'elementCount' in value;
}

/** Builds the addon's argument object; `pointerOf` resolves (and ownership-checks) each buffer. */
export function toNativeKernelArgs(args: object, pointerOf: (buffer: DeviceBuffer) => bigint): NativeKernelArgs {
  const native: NativeKernelArgs = {};
  for (const [field, value] of Object.entries(args)) {
    if (isDeviceBuffer(value)) {
      native[field] = pointerOf(value);
      native[`${field}DType`] = NativeDTypeCode[value.dtype];
    } else if (field === 'layout') {
      native.halfSplit = value === 'half-split' ? 1 : 0;
    } else if (typeof value === 'number') {
      native[field] = value;
    }
  }
  return native;
}
