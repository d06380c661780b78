/**
 * Reading `--prompts`: one prompt per line, or JSON Lines where each line is a JSON string or an
 * object with a `prompt` (or `text`) string field.
 *
 * @packageDocumentation
 */
import { InputError } from './cli-error.js';
import { readTextFile } from './files.js';

/**
 * Parses prompts text. A file whose first non-empty line starts with `{` or `"` is JSON Lines.
 * @throws InputError naming the file and line (exit 2).
 */
export function parsePrompts(text: string, path: string): string[] {
  const lines = text.split(/\r?\n/).map((line, index) => ({ line: line.trim(), number: index + 1 }));
  const nonEmpty = lines.filter(({ line }) => line.length > 0);
  if (nonEmpty.length === 0) throw new InputError(`--prompts ${path}: no prompts (the file is empty)`);
  const jsonLines = /^[{"]/.test(nonEmpty[0]!.line);
  if (!jsonLines) return nonEmpty.map(({ line }) => line);
  return nonEmpty.map(({ line, number }) => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new InputError(`--prompts ${path}: line ${number}: not valid JSON (${(error as Error).message})`);
    }
    if (typeof value === 'string' && value.length > 0) return value;
    if (value && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      const prompt = record.prompt ?? record.text;
      if (typeof prompt === 'string' && prompt.length > 0) return prompt;
    }
    throw new InputError(`--prompts ${path}: line ${number}: expected a JSON string or {"prompt": "..."}`);
  });
}

/** Reads and parses a `--prompts` file. */
export function readPrompts(path: string): string[] {
  return parsePrompts(readTextFile(path, '--prompts'), path);
}
