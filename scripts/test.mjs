#!/usr/bin/env node
// `npm test`: runs every package's vitest tests from the root, writes vitest's JSON report to
// .vitest-report.json and ends with the line `N passed, N failed` computed from that report, so a run
// that executes no test is visible. Extra arguments go to vitest (e.g. `npm test -- packages/core`).
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { summarize } from './test-summary.mjs';

const report = '.vitest-report.json';
rmSync(report, { force: true });
const result = spawnSync(
  process.execPath,
  [
    'node_modules/vitest/vitest.mjs',
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...process.argv.slice(2),
  ],
  { stdio: 'inherit' },
);
if (!existsSync(report)) {
  console.error('vitest wrote no JSON report');
  console.log('0 passed, 0 failed');
  process.exit(result.status || 1);
}
const summary = summarize(report);
let { passed, failed } = summary;
if (summary.unfinished > 0) console.log(`(${summary.unfinished} never finished: their test worker died)`);
if (result.status !== 0 && failed === 0) {
  // vitest failed the run without a failed test: an unhandled error or a worker that died after its tests
  console.log(
    `vitest exited with status ${result.status} without a failed test (see the errors above): counted as 1 failure`,
  );
  failed = 1;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(result.status !== 0 ? result.status || 1 : failed > 0 || passed + failed === 0 ? 1 : 0);
