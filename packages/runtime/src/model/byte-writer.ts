/**
 * A growable little-endian byte buffer for writing file headers (GGUF, safetensors).
 *
 * @packageDocumentation
 */

/** Appends little-endian values to a growing buffer. */
export class ByteWriter {
  private buffer = new Uint8Array(1024);
  private view = new DataView(this.buffer.buffer);
  /** Bytes written so far. */
  length = 0;
  private readonly encoder = new TextEncoder();

  /** Grows the buffer (replacing `buffer` and `view`) and returns the offset of `count` new bytes; read `view` after calling it. */
  private reserve(count: number): number {
    const needed = this.length + count;
    if (needed > this.buffer.length) {
      const grown = new Uint8Array(Math.max(needed, this.buffer.length * 2));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
      this.view = new DataView(grown.buffer);
    }
    const offset = this.length;
    this.length = needed;
    return offset;
  }

  u8(value: number): void {
    const offset = this.reserve(1);
    this.view.setUint8(offset, value);
  }
  i8(value: number): void {
    const offset = this.reserve(1);
    this.view.setInt8(offset, value);
  }
  u16(value: number): void {
    const offset = this.reserve(2);
    this.view.setUint16(offset, value, true);
  }
  i16(value: number): void {
    const offset = this.reserve(2);
    this.view.setInt16(offset, value, true);
  }
  u32(value: number): void {
    const offset = this.reserve(4);
    this.view.setUint32(offset, value, true);
  }
  i32(value: number): void {
    const offset = this.reserve(4);
    this.view.setInt32(offset, value, true);
  }
  u64(value: bigint | number): void {
    const offset = this.reserve(8);
    this.view.setBigUint64(offset, BigInt(value), true);
  }
  i64(value: bigint | number): void {
    const offset = this.reserve(8);
    this.view.setBigInt64(offset, BigInt(value), true);
  }
  f32(value: number): void {
    const offset = this.reserve(4);
    this.view.setFloat32(offset, value, true);
  }
  f64(value: number): void {
    const offset = this.reserve(8);
    this.view.setFloat64(offset, value, true);
  }
  bytes(bytes: Uint8Array): void {
    const offset = this.reserve(bytes.length);
    this.buffer.set(bytes, offset);
  }
  /** UTF-8 bytes of a string, without a length prefix. */
  utf8(text: string): Uint8Array {
    return this.encoder.encode(text);
  }
  /** Zero bytes up to the next multiple of `alignment`. */
  padTo(alignment: number): void {
    const padding = (alignment - (this.length % alignment)) % alignment;
    this.reserve(padding);
  }
  /** The bytes written (a copy). */
  toBytes(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}
