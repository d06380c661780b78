import { afterEach, describe, expect, it } from 'vitest';
import { positiveIntegersFromEnv } from './env-integers.js';

const name = 'FAIRKV_TEST_ENV_INTEGERS';

describe('positiveIntegersFromEnv', () => {
  afterEach(() => {
    delete process.env[name];
  });

  it('reads the fallback when the variable is unset', () => {
    expect(positiveIntegersFromEnv(name, '1,16,58')).toEqual([1, 16, 58]);
  });

  it('reads the variable when it is set', () => {
    process.env[name] = '124,244';
    expect(positiveIntegersFromEnv(name, '1')).toEqual([124, 244]);
  });

  it.each(['0', '-3', '1.5', 'abc', '4,,8', ''])('rejects %j, naming the variable and the value', (value) => {
    process.env[name] = value;
    expect(() => positiveIntegersFromEnv(name, '1')).toThrow(
      `${name}: expected comma-separated positive integers, got ${JSON.stringify(value)}`,
    );
  });
});
