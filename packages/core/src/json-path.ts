import type { z } from 'zod';
import type { ValidationIssue } from './errors.js';

/** Renders a path of keys and indices as a JSON path: `['layers', 3, 'heads']` -> `$.layers[3].heads`. */
export function jsonPath(segments: readonly PropertyKey[]): string {
  let out = '$';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_$][\w$]*$/.test(segment)) out += `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

/** Short, bounded rendering of a value for error messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function valueAt(root: unknown, segments: readonly PropertyKey[]): unknown {
  let current: unknown = root;
  for (const segment of segments) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[segment];
  }
  return current;
}

/** Converts zod issues into fairkv issues whose messages name the value found. */
export function issuesFromZod(
  error: z.ZodError,
  input: unknown,
  prefix: readonly PropertyKey[] = [],
): ValidationIssue[] {
  return error.issues.map((issue) => {
    const segments = [...prefix, ...issue.path];
    const found = valueAt(input, issue.path);
    const suffix = issue.code === 'unrecognized_keys' ? '' : ` (got ${describeValue(found)})`;
    return { path: jsonPath(segments), message: `${issue.message}${suffix}` };
  });
}
