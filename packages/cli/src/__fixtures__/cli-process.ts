import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run the CLI from there, as a user would). */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** `../shared` beside the checkout (DESIGN.md): real models and profiles. */
export const SHARED_DIR = fileURLToPath(new URL('../../../../../shared/', import.meta.url));
export const STORIES_260K = join(SHARED_DIR, 'models/stories260K.gguf');
export const LLAMA_31_GATES = join(
  SHARED_DIR,
  'profiles/duo-attention/Meta-Llama-3.1-8B-Instruct/full_attention_heads.tsv',
);
export const hasStories260k = existsSync(STORIES_260K);
export const hasDuoGates = existsSync(LLAMA_31_GATES);
export const SHARED_SKIP_MESSAGE = `skipped: ${SHARED_DIR} (stories260K.gguf, DuoAttention gate files) is missing beside the checkout`;

/** A private temporary folder for a test file. */
export function temporaryFolder(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `fairkv-cli-${prefix}-`));
}

/** A cache for the default model used by the CLI tests only (generated once, reused by later runs). */
export const TEST_CACHE_DIR = join(tmpdir(), 'fairkv-cli-test-cache');

/** What one `fairkv` run produced. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node packages/cli/bin/fairkv.js ...args` from the repository root, from the TypeScript
 * sources (what the bin runs in a checkout), with a private default-model cache and no FAIRKV_MODEL from outside.
 */
export function runFairkv(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const childEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries({
    ...process.env,
    FAIRKV_MODEL: undefined,
    FAIRKV_CACHE_DIR: TEST_CACHE_DIR,
    FAIRKV_CLI_FROM_DIST: undefined,
    NO_COLOR: '1',
    ...env,
  })) {
    if (value !== undefined) childEnv[key] = value;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['packages/cli/bin/fairkv.js', ...args], {
      cwd: REPO_ROOT,
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The `fairkv: ...` error lines of a run's stderr (Dawn and Node warnings excluded). */
export function errorLines(run: CliRun): string[] {
  return run.stderr.split('\n').filter((line) => line.startsWith('fairkv: '));
}
