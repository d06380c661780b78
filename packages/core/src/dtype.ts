import { ConfigError } from './errors.js';

/** Element types fairkv stores weights and KV cache in. */
export type DType = 'f32' | 'f16' | 'bf16';

/** Every supported dtype, in order of decreasing precision. */
export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

const BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2 };

/** Bytes of one element of `dtype`. */
export function bytesPerElement(dtype: DType): number {
  return BYTES[dtype];
}

/** Narrows an unknown value to a DType, or throws a ConfigError naming `field`. */
export function parseDType(value: unknown, field = 'dtype'): DType {
  if (typeof value === 'string' && (DTYPES as readonly string[]).includes(value)) return value as DType;
  throw new ConfigError(`${field}: expected one of ${DTYPES.join(', ')}, got ${JSON.stringify(value)}`, [
    { path: `$.${field}`, message: `expected one of ${DTYPES.join(', ')}` },
  ]);
}
