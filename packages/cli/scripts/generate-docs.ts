/**
 * Writes docs/cli.md from the `fairkv` command definitions (`npx tsx packages/cli/scripts/generate-docs.ts`).
 * `--check` exits 1 instead when the file is out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderCliDocs } from '../src/cli-docs.js';
import { createProgram } from '../src/program.js';

const target = fileURLToPath(new URL('../../../docs/cli.md', import.meta.url));
const text = renderCliDocs(createProgram());
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {}
  if (current !== text) {
    process.stderr.write(`${target} is out of date: run npx tsx packages/cli/scripts/generate-docs.ts\n`);
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
  process.stdout.write(`wrote ${target}\n`);
}
