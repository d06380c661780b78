/**
 * Errors of the `fairkv` command and their exit codes: 1 for usage (a flag is missing, unknown or
 * malformed), 2 for input (a file is missing or corrupt, a value is out of range or inconsistent),
 * 3 for a failure at run time (a backend, a worker, anything unexpected).
 *
 * @packageDocumentation
 */
import { FairkvError } from '@fairkv/core';

/** Exit status of a successful run. */
export const EXIT_OK = 0;
/** Exit status of a usage error (commander's parse errors included). */
export const EXIT_USAGE = 1;
/** Exit status of an input error: a bad file or value. */
export const EXIT_INPUT = 2;
/** Exit status of a failure while running. */
export const EXIT_RUNTIME = 3;

/** A command line that cannot be run as given; the message names the flag. Exit 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A file or value the command cannot use; the message names the file or flag. Exit 2. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

const INPUT_CODES = new Set([
  'FAIRKV_CONFIG',
  'FAIRKV_VALIDATION',
  'FAIRKV_FORMAT',
  'FAIRKV_UNSUPPORTED',
  'FAIRKV_CAPACITY',
]);
const FILE_CODES = new Set(['ENOENT', 'EACCES', 'EISDIR', 'ENOTDIR', 'EPERM', 'ELOOP']);

/**
 * The exit status for an error: 1 for {@link UsageError}, 2 for {@link InputError}, fairkv's
 * configuration, validation, format, capacity and unsupported errors and file-system errors, 3 for
 * anything else (backend failures, cancellation, bugs).
 */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT_USAGE;
  if (error instanceof InputError) return EXIT_INPUT;
  if (error instanceof FairkvError && INPUT_CODES.has(error.code)) return EXIT_INPUT;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && FILE_CODES.has(code)) return EXIT_INPUT;
  return EXIT_RUNTIME;
}

/**
 * One line for stderr: the error's message with its lines joined by `; ` (validation errors list one
 * issue a line), so scripts can read the reason from a single line.
 */
export function oneLineMessage(error: unknown, maxIssues = 6): string {
  const message = error instanceof Error ? error.message : String(error);
  const lines = message
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  const [first = '', ...rest] = lines;
  const shown = rest.slice(0, maxIssues);
  const more = rest.length > shown.length ? ` (and ${rest.length - shown.length} more)` : '';
  if (shown.length === 0) return first;
  return `${first}${first.endsWith(':') ? ' ' : '; '}${shown.join('; ')}${more}`;
}

/**
 * Prefixes an error from a library with the flag or file it came from, keeping its class (and so
 * its exit code): `--profile profile.json: ...`.
 */
export function withContext(error: unknown, context: string): unknown {
  if (!(error instanceof Error)) return new InputError(`${context}: ${String(error)}`);
  if (error.message.startsWith(context)) return error;
  // `--profile p.json` + `p.json: invalid ...` reads `--profile p.json: invalid ...`
  const file = context.split(' ').slice(1).join(' ');
  const rest = file && error.message.startsWith(`${file}: `) ? error.message.slice(file.length + 2) : error.message;
  try {
    error.message = `${context}: ${rest}`;
  } catch {
    // a frozen error keeps its message
  }
  return error;
}
