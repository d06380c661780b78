#!/usr/bin/env node
// The `fairkv` executable. In a checkout of the fairkv repository (src/ beside this file) it runs the
// TypeScript sources through tsx (a dev dependency of the repository), so `npm ci && npx fairkv` works
// without a build step and never runs a stale dist/. A published install (no src/) runs the built
// dist/cli.js. FAIRKV_CLI_FROM_DIST=1 runs dist/ in a checkout too (after `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/cli.js', import.meta.url);
const source = new URL('../src/cli.ts', import.meta.url);
const useSource = existsSync(source) && !(process.env.FAIRKV_CLI_FROM_DIST === '1' && existsSync(built));
if (useSource) {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    if (!existsSync(built)) {
      process.stderr.write(
        'fairkv: tsx is not installed and the CLI is not built; run `npm ci` (or `npm run build`) at the repository root\n',
      );
      process.exit(3);
    }
  }
  if (register) {
    // The repository's tsconfig maps @fairkv/* to the package sources, from any working directory; device
    // worker threads inherit the variable and register tsx the same way.
    const tsconfig = fileURLToPath(new URL('../../../tsconfig.json', import.meta.url));
    if (!process.env.TSX_TSCONFIG_PATH && existsSync(tsconfig)) process.env.TSX_TSCONFIG_PATH = tsconfig;
    register();
    await import(source.href);
  } else {
    await import(built.href);
  }
} else if (existsSync(built)) {
  await import(built.href);
} else {
  process.stderr.write('fairkv: dist/cli.js is missing; reinstall the package\n');
  process.exit(3);
}
