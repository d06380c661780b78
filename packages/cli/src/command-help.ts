/**
 * Help conventions shared by every command: examples after the options (also rendered into
 * docs/cli.md by scripts/generate-docs.ts), and the `--json` flag.
 *
 * @packageDocumentation
 */
import type { Command } from 'commander';

/** One example of a command's use. */
export interface CommandExample {
  /** The command line, starting with `fairkv`. */
  command: string;
  /** What it does. */
  description: string;
}

const examples = new WeakMap<Command, CommandExample[]>();

/** Attaches examples to a command: shown after `--help` and listed in docs/cli.md. */
export function addExamples(command: Command, list: CommandExample[]): Command {
  examples.set(command, list);
  const lines = list.map((example) => `  $ ${example.command}\n      ${example.description}`);
  return command.addHelpText('after', `\nExamples:\n${lines.join('\n')}\n`);
}

/** The examples attached to a command (empty when none). */
export function examplesOf(command: Command): CommandExample[] {
  return examples.get(command) ?? [];
}

/** Writes one JSON document (and a newline) to stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes `warning: ...` lines to stderr. */
export function printWarnings(warnings: readonly string[]): void {
  for (const warning of new Set(warnings)) process.stderr.write(`warning: ${warning}\n`);
}
