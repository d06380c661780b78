import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
// @ts-expect-error plain .mjs script without type declarations
import { summarize } from './test-summary.mjs';

const reportFile = (testResults: unknown[]) => {
  const file = join(mkdtempSync(join(tmpdir(), 'fairkv-summary-')), 'report.json');
  writeFileSync(file, JSON.stringify({ testResults }));
  return file;
};
const test = (status: string) => ({ title: status, status });

it('counts failed tests, files broken before any test, and tests whose worker died; not skipped ones', () => {
  const file = reportFile([
    {
      name: 'ok.test.ts',
      status: 'passed',
      assertionResults: [test('passed'), test('passed'), test('skipped'), test('todo')],
    },
    { name: 'red.test.ts', status: 'failed', assertionResults: [test('passed'), test('failed')] },
    { name: 'import-error.test.ts', status: 'failed', assertionResults: [] },
    // a native crash: vitest reports the file as passed and its unrun tests as pending
    { name: 'crashed.test.ts', status: 'passed', assertionResults: [test('passed'), test('pending'), test('pending')] },
  ]);
  expect(summarize(file)).toEqual({
    passed: 4,
    failed: 1 + 1 + 2,
    skipped: 2,
    unfinished: 2,
    total: 8,
    line: '4 passed, 4 failed',
  });
});
