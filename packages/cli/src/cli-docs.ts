/**
 * docs/cli.md, rendered from the command definitions themselves (each command's help text and
 * examples), so the reference and `--help` cannot drift. scripts/generate-docs.ts writes it; a test
 * fails when the committed file differs.
 *
 * @packageDocumentation
 */
import type { Command } from 'commander';
import { examplesOf } from './command-help.js';

/** Help width used for docs, independent of the terminal. */
const DOCS_HELP_WIDTH = 100;

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let current: Command | null = command; current; current = current.parent) names.unshift(current.name());
  return names.join(' ');
}

function anchor(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, '')
    .replace(/ /g, '-');
}

function allCommands(root: Command): Command[] {
  const list: Command[] = [];
  const visit = (command: Command) => {
    for (const sub of command.commands) {
      list.push(sub);
      visit(sub);
    }
  };
  visit(root);
  return list;
}

function helpText(command: Command): string {
  command.configureHelp({ helpWidth: DOCS_HELP_WIDTH });
  return command.helpInformation().trimEnd();
}

/** Markdown reference of every command: usage, options and examples, from `program`'s definitions. */
export function renderCliDocs(program: Command): string {
  const commands = allCommands(program);
  const lines: string[] = [
    '# fairkv command-line reference',
    '',
    '<!-- Generated from the command definitions by `npx tsx packages/cli/scripts/generate-docs.ts`; do not edit by hand. -->',
    '',
    'The `fairkv` command (package `fairkv`, packages/cli). After `npm ci` at the repository root, `npx fairkv` runs it',
    '(from the TypeScript sources until `npm run build`). `npm start` runs `fairkv demo`.',
    '',
    'Every command prints `--help` with examples. Exit status: 0 ok, 1 usage error (the message names the flag),',
    '2 input error (a bad file or value, named), 3 runtime failure. Errors are one line on stderr. Progress bars',
    'appear only on a TTY and never with `--json`; colour only on a TTY (and not with `NO_COLOR`).',
    '',
    'Environment: `FAIRKV_MODEL` (model used when `--model` is absent), `FAIRKV_CACHE_DIR` (where the embedded',
    'default model is generated; default: the OS temp folder), `NO_COLOR`.',
    '',
    '## Commands',
    '',
    ...commands.map(
      (command) =>
        `- [\`${commandPath(command)}\`](#${anchor(commandPath(command))}): ${command.summary() || command.description().split('\n')[0]}`,
    ),
    '',
    `## ${commandPath(program)}`,
    '',
    '```text',
    helpText(program),
    '```',
  ];
  for (const command of commands) {
    lines.push('', `## ${commandPath(command)}`, '', '```text', helpText(command), '```');
    const examples = examplesOf(command);
    if (examples.length > 0) {
      lines.push('', 'Examples:', '');
      for (const example of examples)
        lines.push(`- ${example.description}:`, '', '  ```sh', `  ${example.command}`, '  ```', '');
      lines.pop();
    }
  }
  return `${lines.join('\n')}\n`;
}
