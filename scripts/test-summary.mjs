#!/usr/bin/env node
// Prints `N passed, N failed` from a vitest JSON report (default .vitest-report.json).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/**
 * Reads a vitest JSON report and returns the summary line and counts. Besides the failed tests, it counts
 * as failed: a test file that failed before running any test (an import error), and every test that never
 * finished (status `pending`: its worker process died, e.g. a native crash).
 */
export function summarize(file) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  const files = report.testResults ?? [];
  const tests = files.flatMap((file) => file.assertionResults ?? []);
  const count = (status) => tests.filter((test) => test.status === status).length;
  const brokenFiles = files.filter(
    (file) => file.status === 'failed' && !(file.assertionResults ?? []).some((test) => test.status === 'failed'),
  ).length;
  const unfinished = count('pending');
  const passed = count('passed');
  const failed = count('failed') + brokenFiles + unfinished;
  const skipped = count('skipped') + count('todo');
  return { passed, failed, skipped, unfinished, total: passed + failed, line: `${passed} passed, ${failed} failed` };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const summary = summarize(process.argv[2] ?? '.vitest-report.json');
  if (summary.skipped > 0) console.log(`(${summary.skipped} skipped)`);
  if (summary.unfinished > 0) console.log(`(${summary.unfinished} never finished: their test worker died)`);
  console.log(summary.line);
}
