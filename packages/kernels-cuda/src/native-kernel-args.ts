/**
 * Translation of the contract's kernel arguments ({@link KernelArgsMap}) into the flat objects the
 * addon's `run` reads: every buffer becomes its device pointer plus a `<field>DType` code, RoPE's
 * layout becomes `halfSplit`, prefill's `kvRounding` and `productRounding` a code each (1 bf16, 2 f16),
 * numbers pass through unchanged.
 *
 * @packageDocumentation
 */
import { type DeviceBuffer, isDeviceBuffer } from '@fairkv/kernels';
import { NativeDTypeCode, type NativeKernelArgs } from './native.js';

/** `<field>DType` names, made once per field name (a decode step builds thousands of argument objects). */
const dtypeFieldNames = new Map<string, string>();
function dtypeFieldName(field: string): string {
  let name = dtypeFieldNames.get(field);
  if (name === undefined) {
    name = `${field}DType`;
    dtypeFieldNames.set(field, name);
  }
  return name;
}

/** Builds the addon's argument object; `pointerOf` resolves (and ownership-checks) each buffer. */
export function toNativeKernelArgs(args: object, pointerOf: (buffer: DeviceBuffer) => bigint): NativeKernelArgs {
  const native: NativeKernelArgs = {};
  const fields = args as Record<string, unknown>;
  for (const field of Object.keys(fields)) {
    const value = fields[field];
    if (isDeviceBuffer(value)) {
      native[field] = pointerOf(value);
      native[dtypeFieldName(field)] = NativeDTypeCode[value.dtype];
    } else if (field === 'layout') {
      native.halfSplit = value === 'half-split' ? 1 : 0;
    } else if (field === 'kvRounding' || field === 'productRounding') {
      native[field] = value === 'bf16' ? 1 : value === 'f16' ? 2 : 0;
    } else if (typeof value === 'number') {
      native[field] = value;
    }
  }
  return native;
}
