/**
 * A minimal stand-in for the parts of vitest the conformance suite uses (describe, it, it.skipIf,
 * beforeAll, afterAll, expect with toBe / toEqual / toContain / toMatchObject /
 * toBeGreaterThanOrEqual / toBeLessThanOrEqual / toBeCloseTo / toBeUndefined / toThrow), so `describeBackendConformance` runs on a GPU machine that has Node but
 * no node_modules: esbuild bundles the suite with `--alias:vitest=` pointing here. Not a test
 * framework for anything else.
 */
type Hook = () => unknown;
interface TestEntry {
  kind: 'test';
  name: string;
  body?: () => unknown;
  skip: boolean;
}
interface SuiteEntry {
  kind: 'suite';
  name: string;
  entries: (TestEntry | SuiteEntry)[];
  beforeAll: Hook[];
  afterAll: Hook[];
}

const root: SuiteEntry = { kind: 'suite', name: '', entries: [], beforeAll: [], afterAll: [] };
let current = root;

export function describe(name: string, body: () => void): void {
  const suite: SuiteEntry = { kind: 'suite', name, entries: [], beforeAll: [], afterAll: [] };
  current.entries.push(suite);
  const parent = current;
  current = suite;
  try {
    body();
  } finally {
    current = parent;
  }
}

function register(name: string, body: () => unknown, skip: boolean): void {
  current.entries.push({ kind: 'test', name, body, skip });
}

export const it = Object.assign((name: string, body: () => unknown) => register(name, body, false), {
  skipIf: (condition: boolean) => (name: string, body: () => unknown) => register(name, body, condition),
});
export const test = it;

export function beforeAll(hook: Hook): void {
  current.beforeAll.push(hook);
}
export function afterAll(hook: Hook): void {
  current.afterAll.push(hook);
}

function equal(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keysA = Object.keys(a as object);
  const keysB = Object.keys(b as object);
  if (keysA.length !== keysB.length) return false;
  return keysA.every((key) => equal((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

function matches(actual: unknown, subset: unknown): boolean {
  if (typeof subset !== 'object' || subset === null) return equal(actual, subset);
  if (typeof actual !== 'object' || actual === null) return false;
  return Object.entries(subset).every(([key, value]) => matches((actual as Record<string, unknown>)[key], value));
}

const show = (value: unknown): string => {
  try {
    return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}n` : Number.isNaN(v) ? 'NaN' : v));
  } catch {
    return String(value);
  }
};

export function expect(actual: unknown, message?: string) {
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new Error(`${message ? `${message}: ` : ''}expected ${show(actual)} ${what}`);
  };
  return {
    toBe: (expected: unknown) => check(Object.is(actual, expected), `to be ${show(expected)}`),
    toEqual: (expected: unknown) => check(equal(actual, expected), `to equal ${show(expected)}`),
    toContain: (item: unknown) => check(Array.isArray(actual) && actual.includes(item), `to contain ${show(item)}`),
    toMatchObject: (subset: unknown) => check(matches(actual, subset), `to match ${show(subset)}`),
    toBeGreaterThanOrEqual: (bound: number) => check((actual as number) >= bound, `to be >= ${bound}`),
    toBeLessThanOrEqual: (bound: number) => check((actual as number) <= bound, `to be <= ${bound}`),
    // as vitest: |actual - expected| < 10^-digits / 2
    toBeCloseTo: (expected: number, digits = 2) =>
      check(
        Math.abs((actual as number) - expected) < 10 ** -digits / 2,
        `to be close to ${expected} (${digits} digits)`,
      ),
    toBeUndefined: () => check(actual === undefined, 'to be undefined'),
    // as vitest: `actual` is a function that must throw an error whose message matches `pattern`
    /** A message pattern, or an error class the thrown error must be an instance of. */
    toThrow: (expected: RegExp | (new (...args: never[]) => Error)) => {
      let thrown: unknown;
      let threw = false;
      try {
        (actual as () => unknown)();
      } catch (error) {
        threw = true;
        thrown = error;
      }
      const text = String((thrown as Error)?.message ?? thrown);
      const ok = expected instanceof RegExp ? expected.test(text) : thrown instanceof expected;
      if (!threw || !ok)
        throw new Error(
          `${message ? `${message}: ` : ''}expected a throw ${expected instanceof RegExp ? `matching ${expected}` : `of ${expected.name}`}, ${threw ? `got "${text}"` : 'nothing was thrown'}`,
        );
    },
  };
}

/** One finished test. */
export interface ShimResult {
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  milliseconds: number;
  error?: string;
}

/** Runs everything registered so far, in registration order, like vitest's default sequential mode. */
export async function runRegistered(onResult: (result: ShimResult) => void): Promise<ShimResult[]> {
  const results: ShimResult[] = [];
  const visit = async (suite: SuiteEntry, prefix: string): Promise<void> => {
    const path = suite.name ? `${prefix}${suite.name} > ` : prefix;
    let hookError: string | undefined;
    for (const hook of suite.beforeAll) {
      try {
        await hook();
      } catch (error) {
        hookError = `beforeAll failed: ${(error as Error).stack ?? error}`;
      }
    }
    for (const entry of suite.entries) {
      if (entry.kind === 'suite') {
        await visit(entry, path);
        continue;
      }
      const name = `${path}${entry.name}`;
      const started = performance.now();
      let result: ShimResult;
      if (entry.skip) result = { name, status: 'skipped', milliseconds: 0 };
      else if (hookError !== undefined) result = { name, status: 'failed', milliseconds: 0, error: hookError };
      else {
        try {
          await entry.body?.();
          result = { name, status: 'passed', milliseconds: performance.now() - started };
        } catch (error) {
          result = {
            name,
            status: 'failed',
            milliseconds: performance.now() - started,
            error: String((error as Error)?.message ?? error),
          };
        }
      }
      results.push(result);
      onResult(result);
    }
    for (const hook of suite.afterAll) await hook();
  };
  await visit(root, '');
  return results;
}
