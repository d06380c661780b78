import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { renderCliDocs } from './cli-docs.js';
import { examplesOf } from './command-help.js';
import { createProgram } from './program.js';
import { version } from './version.js';

function allCommands(root: Command): Command[] {
  return root.commands.flatMap((command) => [command, ...allCommands(command)]);
}

describe('fairkv program', () => {
  it('reports the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(version).toBe(pkg.version);
    let out = '';
    const program = createProgram().configureOutput({ writeOut: (text) => (out += text) });
    expect(() => program.parse(['node', 'fairkv', '--version'])).toThrow();
    expect(out.trim()).toBe(pkg.version);
  });

  it('every command has a description, examples starting with its own name, and a --help', () => {
    const commands = allCommands(createProgram());
    expect(commands.map((command) => command.name())).toEqual(
      expect.arrayContaining(['demo', 'plan', 'profile', 'generate', 'bench', 'inspect', 'backends', 'model']),
    );
    for (const command of commands) {
      expect(command.description().length, command.name()).toBeGreaterThan(20);
      const examples = examplesOf(command);
      expect(examples.length, command.name()).toBeGreaterThan(0);
      const path = command.parent?.parent
        ? `fairkv ${command.parent.name()} ${command.name()}`
        : `fairkv ${command.name()}`;
      for (const example of examples) expect(example.command, command.name()).toMatch(new RegExp(`(^|\\s)${path}\\b`));
      expect(command.helpInformation()).toContain('--help');
    }
  });

  it('docs/cli.md is generated from the current command definitions (npx tsx packages/cli/scripts/generate-docs.ts)', () => {
    const committed = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');
    const rendered = renderCliDocs(createProgram());
    expect(rendered).toContain('## fairkv plan');
    expect(rendered).toContain('--profile <spec>');
    expect(committed, 'docs/cli.md is stale: run npx tsx packages/cli/scripts/generate-docs.ts').toBe(rendered);
  });
});
