#!/usr/bin/env node
// Prints `N passed, N failed` from a vitest JSON report (default .vitest-report.json).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** Reads a vitest JSON report and returns the summary line and counts. */
export function summarize(file) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  const passed = report.numPassedTests ?? 0;
  // a test file that fails before running any test (an import error) counts as one failure
  const brokenFiles = (report.testResults ?? []).filter(
    (file) => file.status === 'failed' && !(file.assertionResults ?? []).some((test) => test.status === 'failed'),
  ).length;
  const failed = (report.numFailedTests ?? 0) + brokenFiles;
  const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  return { passed, failed, skipped, total: passed + failed, line: `${passed} passed, ${failed} failed` };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const summary = summarize(process.argv[2] ?? '.vitest-report.json');
  if (summary.skipped > 0) console.log(`(${summary.skipped} skipped)`);
  console.log(summary.line);
}
