/**
 * Random-access byte sources for model files: positioned reads through a file descriptor, so a
 * multi-gigabyte GGUF or safetensors file is never loaded whole (the lazy, memory-map-like access
 * llama.cpp and the safetensors library give). Every read is bounds-checked against the size.
 *
 * @packageDocumentation
 */
import { closeSync, fstatSync, openSync, read as readCallback, readSync } from 'node:fs';
import { FormatError } from '@fairkv/core';

/** A finite, random-access sequence of bytes (a file, or bytes in memory). */
export interface ByteSource {
  /** Name used in error messages: the file path, or a label for in-memory bytes. */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /**
   * Reads exactly `length` bytes at `position`, synchronously.
   * @param field - what is being read, for the error message
   * @throws FormatError when the range does not lie inside the source.
   */
  readSync(position: number, length: number, field: string): Uint8Array;
  /** Reads exactly `length` bytes at `position` without blocking the event loop. */
  read(position: number, length: number, field: string): Promise<Uint8Array>;
  /** Releases the file descriptor; later reads fail. Idempotent. */
  close(): void;
}

/** Builds the FormatError every reader throws: `file: field at byte offset: problem`. */
export function formatError(file: string, field: string, offset: number, problem: string): FormatError {
  return new FormatError(`${file}: ${field} at byte ${offset}: ${problem}`, { file, field, offset });
}

function checkRange(source: ByteSource, position: number, length: number, field: string): void {
  if (!Number.isSafeInteger(position) || !Number.isSafeInteger(length) || position < 0 || length < 0) {
    throw formatError(source.name, field, position, `invalid range (position ${position}, length ${length})`);
  }
  if (position + length > source.size) {
    throw formatError(
      source.name,
      field,
      position,
      `needs ${length} bytes but only ${Math.max(0, source.size - position)} remain (file size ${source.size})`,
    );
  }
}

/** Bytes in memory as a ByteSource (tests, fuzzing, files already read). */
export function memoryByteSource(bytes: Uint8Array, name = '<memory>'): ByteSource {
  const source: ByteSource = {
    name,
    size: bytes.length,
    readSync(position, length, field) {
      checkRange(source, position, length, field);
      return bytes.subarray(position, position + length);
    },
    async read(position, length, field) {
      return source.readSync(position, length, field);
    },
    close() {},
  };
  return source;
}

function readFully(fd: number, target: Uint8Array, position: number, name: string, field: string): void {
  let done = 0;
  while (done < target.length) {
    const count = readSync(fd, target, done, target.length - done, position + done);
    if (count === 0) throw formatError(name, field, position + done, 'unexpected end of file (was it truncated?)');
    done += count;
  }
}

function readChunk(fd: number, target: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    readCallback(fd, target, offset, length, position, (error, count) => (error ? reject(error) : resolve(count)));
  });
}

/**
 * Opens a file for positioned reads. The size is taken once at open; a file that shrinks later gives
 * a FormatError on the read that hits the new end, never a short buffer.
 */
export function openFileByteSource(path: string): ByteSource {
  const fd = openSync(path, 'r');
  let size: number;
  try {
    size = fstatSync(fd).size;
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  let open = true;
  const ensureOpen = (field: string, position: number) => {
    if (!open) throw formatError(path, field, position, 'the file was already closed');
  };
  const source: ByteSource = {
    name: path,
    size,
    readSync(position, length, field) {
      checkRange(source, position, length, field);
      ensureOpen(field, position);
      const target = new Uint8Array(length);
      readFully(fd, target, position, path, field);
      return target;
    },
    async read(position, length, field) {
      checkRange(source, position, length, field);
      ensureOpen(field, position);
      const target = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const count = await readChunk(fd, target, done, Math.min(length - done, 1 << 30), position + done);
        if (count === 0) throw formatError(path, field, position + done, 'unexpected end of file (was it truncated?)');
        done += count;
      }
      return target;
    },
    close() {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
  return source;
}
