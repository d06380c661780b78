/**
 * Typed access to GGUF metadata (ggml docs/gguf.md, "Standardized key-value pairs"). A key of the
 * wrong type gives a FormatError naming the file, the key and the byte offset of its value.
 *
 * @packageDocumentation
 */
import { formatError } from './byte-source.js';
import type { GgufHeader, GgufMetadataEntry } from './gguf-reader.js';
import type { GgufArrayValue } from './gguf-value.js';

const INTEGER_TYPES = new Set(['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'uint64', 'int64']);
const FLOAT_TYPES = new Set(['float32', 'float64']);

/** The metadata of one GGUF file with typed getters. */
export class GgufMetadata {
  constructor(readonly header: GgufHeader) {}

  /** The raw entry, or undefined. */
  entry(key: string): GgufMetadataEntry | undefined {
    return this.header.metadata.get(key);
  }

  has(key: string): boolean {
    return this.header.metadata.has(key);
  }

  /** Throws the FormatError for `key`. */
  fail(key: string, problem: string): never {
    const offset = this.entry(key)?.offset ?? 0;
    throw formatError(this.header.file, key, offset, problem);
  }

  /** An integer value as a safe number. */
  integer(key: string): number | undefined {
    const entry = this.entry(key);
    if (!entry) return undefined;
    if (!INTEGER_TYPES.has(entry.value.type)) this.fail(key, `expected an integer, got a ${entry.value.type}`);
    const value = entry.value.value as number | bigint;
    if (
      typeof value === 'bigint' &&
      (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER))
    ) {
      this.fail(key, `integer ${value} is too large`);
    }
    return Number(value);
  }

  /** An integer value that must be present and at least `minimum`. */
  requiredInteger(key: string, minimum = 1): number {
    const value = this.integer(key);
    if (value === undefined) throw formatError(this.header.file, key, 0, 'required key is missing');
    if (value < minimum) this.fail(key, `expected at least ${minimum}, got ${value}`);
    return value;
  }

  /** A float (or integer) value as a number. */
  number(key: string): number | undefined {
    const entry = this.entry(key);
    if (!entry) return undefined;
    if (FLOAT_TYPES.has(entry.value.type)) return entry.value.value as number;
    return this.integer(key);
  }

  /** A string value. */
  string(key: string): string | undefined {
    const entry = this.entry(key);
    if (!entry) return undefined;
    if (entry.value.type !== 'string') this.fail(key, `expected a string, got a ${entry.value.type}`);
    return entry.value.value;
  }

  /** A bool value. */
  boolean(key: string): boolean | undefined {
    const entry = this.entry(key);
    if (!entry) return undefined;
    if (entry.value.type !== 'bool') this.fail(key, `expected a bool, got a ${entry.value.type}`);
    return entry.value.value;
  }

  /** An array value whose element type is one of `elementTypes`. */
  array(key: string, elementTypes: readonly string[]): GgufArrayValue | undefined {
    const entry = this.entry(key);
    if (!entry) return undefined;
    if (entry.value.type !== 'array' || !elementTypes.includes(entry.value.elementType)) {
      const got = entry.value.type === 'array' ? `an array of ${entry.value.elementType}` : `a ${entry.value.type}`;
      this.fail(key, `expected an array of ${elementTypes.join(' or ')}, got ${got}`);
    }
    return entry.value;
  }

  /** An array of strings. */
  stringArray(key: string): string[] | undefined {
    return this.array(key, ['string'])?.value as string[] | undefined;
  }

  /** An array of numbers (any integer or float element type; 64-bit integers converted). */
  numberArray(key: string): number[] | undefined {
    const array = this.array(key, [...INTEGER_TYPES, ...FLOAT_TYPES]);
    if (!array) return undefined;
    return (array.value as (number | bigint)[]).map((value) => Number(value));
  }
}

/**
 * The shortest decimal that rounds to the same float32 (`9.999999747378752e-6` becomes `1e-5`): GGUF
 * stores hyperparameters such as the RMSNorm epsilon as float32, configs write the decimal.
 */
export function shortestFloat32Decimal(value: number): number {
  const rounded = Math.fround(value);
  if (!Number.isFinite(rounded) || rounded === 0) return rounded;
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(rounded.toPrecision(digits));
    if (Math.fround(candidate) === rounded) return candidate;
  }
  return rounded;
}
