import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bundleCommit, gitCommit } from './git-commit.js';

describe('gitCommit', () => {
  let dir: string;
  let saved: string | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fairkv-commit-'));
    saved = process.env.FAIRKV_GIT_COMMIT;
    delete process.env.FAIRKV_GIT_COMMIT;
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    if (saved === undefined) delete process.env.FAIRKV_GIT_COMMIT;
    else process.env.FAIRKV_GIT_COMMIT = saved;
  });
  const record = (text: string) => {
    mkdirSync(join(dir, '.device', 'cli'), { recursive: true });
    writeFileSync(join(dir, '.device', 'commit.txt'), text);
  };

  it('gives a bundle the commit bundle-device.sh recorded, not what a stale git copy says', () => {
    record('e136ea8a458a010c76db7aaac4ab2c65119c52a8-dirty\n');
    expect(gitCommit(process.cwd(), join(dir, '.device', 'bench-decode.mjs'))).toBe(
      'e136ea8a458a010c76db7aaac4ab2c65119c52a8-dirty',
    );
    // bundles one folder down (the CLI's) read the same record
    expect(bundleCommit(join(dir, '.device', 'cli', 'cli.mjs'))).toBe('e136ea8a458a010c76db7aaac4ab2c65119c52a8-dirty');
  });

  it('asks git when the benchmark runs from its source, even with a bundle folder beside it', () => {
    record('an-older-bundle\n');
    expect(gitCommit(process.cwd(), join(dir, 'bench', 'run.ts'))).toMatch(/^[0-9a-f]{40}$/);
  });

  it('prefers FAIRKV_GIT_COMMIT to the recorded commit', () => {
    record('recorded\n');
    process.env.FAIRKV_GIT_COMMIT = 'from-the-environment';
    expect(gitCommit(process.cwd(), join(dir, '.device', 'bench-decode.mjs'))).toBe('from-the-environment');
  });

  it('says unknown outside a repository, and ignores an empty or missing record', () => {
    expect(gitCommit(dir, join(dir, 'run.ts'))).toBe('unknown');
    expect(bundleCommit(join(dir, '.device', 'bench.mjs'))).toBeUndefined();
    record('\n');
    expect(bundleCommit(join(dir, '.device', 'bench.mjs'))).toBeUndefined();
  });
});
