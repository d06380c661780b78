/**
 * A sequential little-endian reader over a {@link ByteSource} for file headers (GGUF, safetensors).
 * It buffers a window of the source, checks every read against the source size before touching
 * bytes, and reports failures as FormatError naming the file, the field and the byte offset.
 *
 * @packageDocumentation
 */
import { type ByteSource, formatError } from './byte-source.js';

const DEFAULT_WINDOW = 1 << 16;

/** Sequential, bounds-checked reads of little-endian values from a ByteSource. */
export class ByteCursor {
  /** Absolute position of the next read. */
  position: number;
  private window: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.window.buffer);
  private windowStart = 0;
  private readonly decoder = new TextDecoder('utf-8');

  constructor(
    readonly source: ByteSource,
    position = 0,
  ) {
    this.position = position;
  }

  /** Bytes left between the position and the end of the source. */
  get remaining(): number {
    return this.source.size - this.position;
  }

  /** Throws a FormatError located at the current position (or `offset`). */
  fail(field: string, problem: string, offset = this.position): never {
    throw formatError(this.source.name, field, offset, problem);
  }

  /** Checks that `length` more bytes exist, then makes them addressable; returns their window offset. */
  private take(length: number, field: string): number {
    if (length > this.remaining) {
      this.fail(field, `needs ${length} bytes but only ${this.remaining} remain (file size ${this.source.size})`);
    }
    const start = this.position - this.windowStart;
    if (start < 0 || start + length > this.window.length) {
      const windowLength = Math.min(Math.max(DEFAULT_WINDOW, length), this.remaining);
      const bytes = this.source.readSync(this.position, windowLength, field);
      this.window = bytes;
      this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      this.windowStart = this.position;
    }
    const offset = this.position - this.windowStart;
    this.position += length;
    return offset;
  }

  u8(field: string): number {
    const offset = this.take(1, field);
    return this.view.getUint8(offset);
  }
  i8(field: string): number {
    const offset = this.take(1, field);
    return this.view.getInt8(offset);
  }
  u16(field: string): number {
    const offset = this.take(2, field);
    return this.view.getUint16(offset, true);
  }
  i16(field: string): number {
    const offset = this.take(2, field);
    return this.view.getInt16(offset, true);
  }
  u32(field: string): number {
    const offset = this.take(4, field);
    return this.view.getUint32(offset, true);
  }
  i32(field: string): number {
    const offset = this.take(4, field);
    return this.view.getInt32(offset, true);
  }
  u64(field: string): bigint {
    const offset = this.take(8, field);
    return this.view.getBigUint64(offset, true);
  }
  i64(field: string): bigint {
    const offset = this.take(8, field);
    return this.view.getBigInt64(offset, true);
  }
  f32(field: string): number {
    const offset = this.take(4, field);
    return this.view.getFloat32(offset, true);
  }
  f64(field: string): number {
    const offset = this.take(8, field);
    return this.view.getFloat64(offset, true);
  }

  /**
   * Reads an unsigned count or length of `width` bytes (4 or 8) as a safe integer, and checks it
   * against `limit` (typically what the rest of the file could hold).
   */
  size(width: 4 | 8, field: string, limit = Number.MAX_SAFE_INTEGER): number {
    const offset = this.position;
    const value = width === 4 ? BigInt(this.u32(field)) : this.u64(field);
    if (value > BigInt(limit)) {
      this.fail(field, `value ${value} exceeds the largest possible ${limit}`, offset);
    }
    return Number(value);
  }

  /** Returns `length` raw bytes (a view into the window or a fresh buffer). */
  bytes(length: number, field: string): Uint8Array {
    const offset = this.take(length, field);
    // read the window after take(): take() may replace it
    return this.window.subarray(offset, offset + length);
  }

  /** Reads a length-prefixed UTF-8 string (GGUF `gguf_string_t`); invalid UTF-8 becomes U+FFFD. */
  string(lengthWidth: 4 | 8, field: string, maxLength = Number.MAX_SAFE_INTEGER): string {
    const offset = this.position;
    const length = this.size(
      lengthWidth,
      `${field} (string length)`,
      Math.min(maxLength, Math.max(0, this.remaining - lengthWidth)),
    );
    if (length > maxLength) this.fail(field, `string length ${length} exceeds ${maxLength}`, offset);
    const bytes = this.bytes(length, field);
    if (length <= 64) {
      // short ASCII strings (most vocabulary entries) without a TextDecoder call
      let ascii = true;
      for (let index = 0; index < length; index++) {
        if (bytes[index]! >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) return String.fromCharCode(...bytes);
    }
    return this.decoder.decode(bytes);
  }
}
