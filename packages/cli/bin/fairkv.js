#!/usr/bin/env node
// The `fairkv` executable. A published install runs the built CLI (dist/cli.js). In a checkout of the
// fairkv repository before `npm run build`, it runs the TypeScript sources through tsx (a dev
// dependency of the repository), so `npm ci && npx fairkv` works without a build step.
// FAIRKV_CLI_FROM_SOURCE=1 forces the sources even when dist/ exists (the CLI's tests use it, so a
// stale build is never what they test).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/cli.js', import.meta.url);
const source = new URL('../src/cli.ts', import.meta.url);
const fromSource = process.env.FAIRKV_CLI_FROM_SOURCE === '1' && existsSync(source);
if (existsSync(built) && !fromSource) {
  await import(built.href);
} else if (existsSync(source)) {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write(
      'fairkv: the CLI is not built and tsx is not installed; run `npm run build` at the repository root\n',
    );
    process.exit(3);
  }
  // The repository's tsconfig maps @fairkv/* to the package sources, from any working directory; device
  // worker threads inherit the variable and register tsx the same way.
  const tsconfig = fileURLToPath(new URL('../../../tsconfig.json', import.meta.url));
  if (!process.env.TSX_TSCONFIG_PATH && existsSync(tsconfig)) process.env.TSX_TSCONFIG_PATH = tsconfig;
  register();
  await import(source.href);
} else {
  process.stderr.write('fairkv: dist/cli.js is missing; reinstall the package\n');
  process.exit(3);
}
