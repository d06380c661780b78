/**
 * A benchmark's comma-separated list of positive integers from the environment (row counts, batch
 * sizes, sweep values), `fallback` when the variable is unset; anything else throws, naming the
 * variable and what it held.
 */
export function positiveIntegersFromEnv(name: string, fallback: string): number[] {
  const text = process.env[name] ?? fallback;
  const values = text.split(',').map(Number);
  if (values.some((value) => !Number.isInteger(value) || value < 1)) {
    throw new Error(`${name}: expected comma-separated positive integers, got ${JSON.stringify(text)}`);
  }
  return values;
}
