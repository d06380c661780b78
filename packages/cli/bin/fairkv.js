#!/usr/bin/env node
// The `fairkv` executable. A published install runs the built CLI (dist/cli.js). In a checkout of the
// fairkv repository before `npm run build`, it runs the TypeScript sources through tsx (a dev
// dependency of the repository), so `npm ci && npx fairkv` works without a build step.
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli.js', import.meta.url);
const source = new URL('../src/cli.ts', import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else if (existsSync(source)) {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write('fairkv: the CLI is not built and tsx is not installed; run `npm run build` at the repository root\n');
    process.exit(3);
  }
  register();
  await import(source.href);
} else {
  process.stderr.write('fairkv: dist/cli.js is missing; reinstall the package\n');
  process.exit(3);
}
