/**
 * The commit a benchmark measures, for its JSON: `FAIRKV_GIT_COMMIT` when set; else, when the benchmark
 * runs from a bundle of `bundle-device.sh` (under a `.device` folder, as on the GPU machines, whose copy
 * of the working tree may carry stale git metadata), the commit that script recorded beside the bundles
 * in `.device/commit.txt` (with `-dirty` when tracked files differed from it); else `git rev-parse HEAD`
 * in `cwd`; else `'unknown'`. (`run-device.sh` also passes the recorded commit as `FAIRKV_GIT_COMMIT`.)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The commit recorded for the bundle at `modulePath` (`<root>/.device/commit.txt` for any file under
 * `<root>/.device/`), or undefined where the module is not in a bundle folder or nothing was recorded.
 */
export function bundleCommit(modulePath: string): string | undefined {
  const marker = `${sep}.device${sep}`;
  const at = modulePath.lastIndexOf(marker);
  if (at < 0) return undefined;
  try {
    const recorded = readFileSync(join(modulePath.slice(0, at + marker.length), 'commit.txt'), 'utf8').trim();
    return recorded === '' ? undefined : recorded;
  } catch {
    return undefined;
  }
}

export function gitCommit(cwd?: string, modulePath: string = fileURLToPath(import.meta.url)): string {
  if (process.env.FAIRKV_GIT_COMMIT) return process.env.FAIRKV_GIT_COMMIT;
  const bundled = bundleCommit(modulePath);
  if (bundled !== undefined) return bundled;
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
