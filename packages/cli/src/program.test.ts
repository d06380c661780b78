import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createProgram } from './program.js';
import { version } from './version.js';

describe('fairkv program', () => {
  it('reports the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(version).toBe(pkg.version);
    let out = '';
    const program = createProgram()
      .exitOverride()
      .configureOutput({ writeOut: (text) => (out += text) });
    expect(() => program.parse(['node', 'fairkv', '--version'])).toThrow();
    expect(out.trim()).toBe(pkg.version);
  });
});
