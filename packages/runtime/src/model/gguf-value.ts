/**
 * GGUF metadata values (gguf.md, "GGUF key-value types"): every scalar type, strings and
 * arrays, nested arrays included. 64-bit integers are kept as `bigint` so nothing is rounded.
 *
 * @packageDocumentation
 */

/** GGUF value type names, in the order of their numeric ids 0..12 (`gguf_metadata_value_type`). */
export const GGUF_VALUE_TYPES = [
  'uint8',
  'int8',
  'uint16',
  'int16',
  'uint32',
  'int32',
  'float32',
  'bool',
  'string',
  'array',
  'uint64',
  'int64',
  'float64',
] as const;

/** A GGUF value type name. */
export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];

/** Scalar value types that hold a JavaScript number. */
export type GgufNumberType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';

/** One typed GGUF metadata value. Arrays carry their element type; their items are plain values. */
export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: 'uint64' | 'int64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | GgufArrayValue;

/**
 * A GGUF array. Items are numbers, bigints, booleans or strings for scalar element types, and
 * nested {@link GgufArrayValue}s (each with its own element type) for arrays of arrays.
 */
export interface GgufArrayValue {
  type: 'array';
  elementType: GgufValueType;
  value: number[] | bigint[] | boolean[] | string[] | GgufArrayValue[];
}

/** Smallest encoded size in bytes of one value of `type` (an empty string or array for those). */
export function minimumValueBytes(type: GgufValueType, lengthWidth: 4 | 8): number {
  switch (type) {
    case 'uint8':
    case 'int8':
    case 'bool':
      return 1;
    case 'uint16':
    case 'int16':
      return 2;
    case 'uint32':
    case 'int32':
    case 'float32':
      return 4;
    case 'uint64':
    case 'int64':
    case 'float64':
      return 8;
    case 'string':
      return lengthWidth;
    case 'array':
      return 4 + lengthWidth;
  }
}

/** Converts a metadata value to a plain JSON-friendly JavaScript value (bigints become numbers or strings). */
export function ggufValueToPlain(value: GgufValue): unknown {
  if (value.type === 'array') {
    if (value.elementType === 'array') return (value.value as GgufArrayValue[]).map(ggufValueToPlain);
    if (value.elementType === 'uint64' || value.elementType === 'int64')
      return (value.value as bigint[]).map(bigintToPlain);
    return [...value.value];
  }
  if (value.type === 'uint64' || value.type === 'int64') return bigintToPlain(value.value);
  return value.value;
}

function bigintToPlain(value: bigint): number | string {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : String(value);
}
