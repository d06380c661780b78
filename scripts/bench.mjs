#!/usr/bin/env node
// `npm run bench [name...]`: runs every benchmark program bench/<name>/run.ts (or the named ones) with tsx.
// Each writes its JSON results under bench/<name>/results/. Benchmarks that need a GPU say so and skip.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const wanted = process.argv.slice(2);
const names = readdirSync('bench', { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(`bench/${entry.name}/run.ts`))
  .map((entry) => entry.name)
  .filter((name) => wanted.length === 0 || wanted.includes(name));
const unknown = wanted.filter((name) => !names.includes(name));
if (unknown.length > 0) {
  console.error(`bench: no benchmark named ${unknown.join(', ')} (have: ${readdirSync('bench').join(', ')})`);
  process.exit(1);
}
let failed = 0;
for (const name of names) {
  console.log(`\n== bench/${name}`);
  const result = spawnSync(process.execPath, ['node_modules/tsx/dist/cli.mjs', `bench/${name}/run.ts`], {
    stdio: 'inherit',
  });
  if (result.status !== 0) {
    failed++;
    console.error(`bench/${name} failed with exit code ${result.status}`);
  }
}
process.exit(failed > 0 ? 1 : 0);
