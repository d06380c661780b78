import { afterEach, describe, expect, it } from 'vitest';
import { nameFromEnv, namesFromEnv } from './env-names.js';

const name = 'FAIRKV_TEST_ENV_NAMES';
const known = ['cublas', 'tensor-core', 'tp4 wk|wv'];

describe('namesFromEnv', () => {
  afterEach(() => {
    delete process.env[name];
  });

  it('gives undefined when the variable is unset', () => {
    expect(namesFromEnv(name, known)).toBeUndefined();
  });

  it('reads the names in order, trimmed', () => {
    process.env[name] = 'tensor-core, tp4 wk|wv ,cublas';
    expect(namesFromEnv(name, known)).toEqual(['tensor-core', 'tp4 wk|wv', 'cublas']);
  });

  it.each(['cuBLAS', 'tensor-core,gemv', '', 'cublas,,tensor-core'])(
    'rejects %j, naming the variable, the unknown names and the known ones',
    (value) => {
      process.env[name] = value;
      const unknown = value
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => !known.includes(entry));
      expect(() => namesFromEnv(name, known)).toThrow(
        `${name}: unknown name(s) ${JSON.stringify(unknown)}; known: cublas, tensor-core, tp4 wk|wv`,
      );
    },
  );
});

describe('nameFromEnv', () => {
  const dtypes = ['bf16', 'f16', 'f32'] as const;
  afterEach(() => {
    delete process.env[name];
  });

  it.each([undefined, '', '  '])('gives the fallback for %j', (value) => {
    if (value !== undefined) process.env[name] = value;
    expect(nameFromEnv(name, dtypes, 'bf16')).toBe('bf16');
  });

  it('reads a known choice, trimmed', () => {
    process.env[name] = ' f32 ';
    expect(nameFromEnv(name, dtypes, 'bf16')).toBe('f32');
  });

  it.each(['F32', 'fp32', 'f32,bf16'])('rejects %j, naming the variable, the value and the choices', (value) => {
    process.env[name] = value;
    expect(() => nameFromEnv(name, dtypes, 'bf16')).toThrow(
      `${name}: expected one of bf16, f16, f32, got ${JSON.stringify(value)}`,
    );
  });
});
