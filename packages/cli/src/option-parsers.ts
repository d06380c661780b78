/**
 * Parsers of flag values for commander. A malformed value throws commander's InvalidArgumentError,
 * which commander reports naming the flag (`option '--devices <n>' argument 'x' is invalid`) and
 * exits with status 1.
 *
 * @packageDocumentation
 */
import { InvalidArgumentError } from 'commander';

/** An integer `>= min` (e.g. `--devices`, `--max-tokens`). */
export function integerAtLeast(min: number): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isInteger(parsed) || parsed < min) {
      throw new InvalidArgumentError(`expected an integer >= ${min}`);
    }
    return parsed;
  };
}

/** Any integer (e.g. `--seed`). */
export function integer(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isInteger(parsed)) throw new InvalidArgumentError('expected an integer');
  return parsed;
}

/** A finite number in `[min, max]` (with `minExclusive`, in `(min, max]`). */
export function numberInRange(min: number, max: number, minExclusive = false): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    const aboveMin = minExclusive ? parsed > min : parsed >= min;
    if (value.trim() === '' || !Number.isFinite(parsed) || !aboveMin || parsed > max) {
      const range = `${minExclusive ? '(' : '['}${min}, ${max === Number.POSITIVE_INFINITY ? 'inf)' : `${max}]`}`;
      throw new InvalidArgumentError(`expected a number in ${range}`);
    }
    return parsed;
  };
}

/** `--batch`: a positive integer or `max`. */
export function batchSize(value: string): number | 'max' {
  if (value === 'max') return 'max';
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError('expected a positive integer or "max"');
  return parsed;
}

/** A comma-separated list whose items are all in `choices` (e.g. `--solvers contiguous,fair-copy`). */
export function listOf(choices: readonly string[]): (value: string) => string[] {
  return (value) => {
    const items = value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item.length > 0);
    const unknown = items.filter((item) => !choices.includes(item));
    if (items.length === 0 || unknown.length > 0) {
      throw new InvalidArgumentError(
        `${unknown.length > 0 ? `unknown ${unknown.map((item) => `"${item}"`).join(', ')}; ` : ''}expected a comma-separated list of ${choices.join(', ')}`,
      );
    }
    return [...new Set(items)];
  };
}
