/**
 * Reading and writing the files flags name, with errors that name the flag and the file.
 *
 * @packageDocumentation
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { InputError } from './cli-error.js';

function describeFsError(error: unknown): string {
  const code = (error as { code?: string }).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory, expected a file';
    case 'ENOTDIR':
      return 'a parent path is not a directory';
    default:
      return (error as Error).message;
  }
}

/**
 * Reads a UTF-8 text file a flag names.
 * @throws InputError `--profile missing.json: no such file or directory` (exit 2).
 */
export function readTextFile(path: string, flag: string): string {
  try {
    if (statSync(path).isDirectory()) throw new InputError(`${flag} ${path}: is a directory, expected a file`);
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(`${flag} ${path}: ${describeFsError(error)}`);
  }
}

/**
 * Checks that a path a flag names exists (file or folder).
 * @throws InputError naming the flag and path (exit 2).
 */
export function assertExists(path: string, flag: string): void {
  try {
    statSync(path);
  } catch (error) {
    throw new InputError(`${flag} ${path}: ${describeFsError(error)}`);
  }
}

/**
 * Parses JSON text read from `path`.
 * @throws InputError naming the flag, the file and the JSON error (exit 2).
 */
export function parseJsonFile(text: string, path: string, flag: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InputError(`${flag} ${path}: not valid JSON (${(error as Error).message})`);
  }
}

/**
 * Writes a file a flag names, creating its folder.
 * @throws InputError naming the flag and path when it cannot be written (exit 2).
 */
export function writeTextFile(path: string, text: string, flag: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  } catch (error) {
    throw new InputError(`${flag} ${path}: cannot write (${describeFsError(error)})`);
  }
}
