/**
 * The fairkv error hierarchy. Every error carries a stable machine-readable `code`, and messages name
 * the field (or JSON path), the offending value and what was expected.
 *
 * @packageDocumentation
 */

/** Stable error codes; tools may branch on them, so they never change meaning. */
export type FairkvErrorCode =
  | 'FAIRKV_CONFIG'
  | 'FAIRKV_VALIDATION'
  | 'FAIRKV_CAPACITY'
  | 'FAIRKV_FORMAT'
  | 'FAIRKV_UNSUPPORTED'
  | 'FAIRKV_BACKEND'
  | 'FAIRKV_CANCELLED';

/** Base class of every error fairkv throws on purpose. */
export class FairkvError extends Error {
  /** Stable code, e.g. `FAIRKV_VALIDATION`. */
  readonly code: FairkvErrorCode;

  constructor(code: FairkvErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** One violated invariant, located by a JSON path such as `$.layers[3].heads[1].replicas[0].share`. */
export interface ValidationIssue {
  /** JSON path of the offending value, rooted at `$`. */
  path: string;
  /** What is wrong and what was expected. */
  message: string;
}

/** A configuration (model config, cluster spec, option object) is malformed or inconsistent. */
export class ConfigError extends FairkvError {
  /** Every issue found, not only the first. */
  readonly issues: readonly ValidationIssue[];

  constructor(message: string, issues: readonly ValidationIssue[] = [], options?: { cause?: unknown }) {
    super('FAIRKV_CONFIG', message, options);
    this.issues = issues;
  }
}

/** A document (plan, profile) or an option violates its schema or invariants. */
export class ValidationError extends FairkvError {
  /** Every issue found, not only the first. */
  readonly issues: readonly ValidationIssue[];

  constructor(message: string, issues: readonly ValidationIssue[] = [], options?: { cause?: unknown }) {
    super('FAIRKV_VALIDATION', message, options);
    this.issues = issues;
  }
}

/** Something does not fit in a device's memory. */
export class CapacityError extends FairkvError {
  /** Index of the device that overflows, when one is to blame. */
  readonly device: number | undefined;
  /** Bytes missing on that device. */
  readonly shortfallBytes: number | undefined;

  constructor(message: string, details: { device?: number; shortfallBytes?: number } = {}) {
    super('FAIRKV_CAPACITY', message);
    this.device = details.device;
    this.shortfallBytes = details.shortfallBytes;
  }
}

/** A file (model, profile, tensor data) is malformed or truncated. */
export class FormatError extends FairkvError {
  /** The file, when known. */
  readonly file: string | undefined;
  /** The field being read. */
  readonly field: string | undefined;
  /** Byte offset where reading failed. */
  readonly offset: number | undefined;

  constructor(message: string, details: { file?: string; field?: string; offset?: number } = {}) {
    super('FAIRKV_FORMAT', message);
    this.file = details.file;
    this.field = details.field;
    this.offset = details.offset;
  }
}

/** A valid request that this build or configuration does not support (a dtype, a tensor type...). */
export class UnsupportedError extends FairkvError {
  constructor(message: string) {
    super('FAIRKV_UNSUPPORTED', message);
  }
}

/** A compute backend could not be created or failed. */
export class BackendError extends FairkvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FAIRKV_BACKEND', message, options);
  }
}

/** Work was cancelled through an AbortSignal. */
export class CancelledError extends FairkvError {
  constructor(message = 'operation cancelled') {
    super('FAIRKV_CANCELLED', message);
  }
}

/** Formats issues as one line each: `  $.path: message`. */
export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((issue) => `  ${issue.path}: ${issue.message}`).join('\n');
}
