#!/usr/bin/env node
// The `fairkv` executable: runs the built CLI (dist/cli.js; `npm ci` at the repo root builds it).
import('../dist/cli.js').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('fairkv: the CLI is not built; run `npm run build` at the repository root\n');
    process.exit(3);
  }
  throw error;
});
