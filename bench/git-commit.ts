/**
 * The commit a benchmark measures, for its JSON: `FAIRKV_GIT_COMMIT` when set (the GPU machines run a
 * copy of the working tree whose git metadata can be stale; `run-device.sh` sets it from the commit
 * `bundle-device.sh` recorded, with `-dirty` when tracked files differed from it), else `git rev-parse
 * HEAD` in `cwd`, else `'unknown'`.
 */
import { execFileSync } from 'node:child_process';

export function gitCommit(cwd?: string): string {
  if (process.env.FAIRKV_GIT_COMMIT) return process.env.FAIRKV_GIT_COMMIT;
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], {
      encoding: 'utf8',
      cwd,
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return 'unknown';
  }
}
