import { describe, expect, it } from 'vitest';
import { isKernelName, KERNEL_NAMES } from './kernel-names.js';

describe('kernel names', () => {
  it('are unique kebab-case ids', () => {
    expect(new Set(KERNEL_NAMES).size).toBe(KERNEL_NAMES.length);
    for (const name of KERNEL_NAMES) expect(name).toMatch(/^[a-z]+(-[a-z]+)*$/);
  });

  it('narrows strings', () => {
    expect(isKernelName('ragged-decode-attention')).toBe(true);
    expect(isKernelName('all-reduce')).toBe(false);
    expect(isKernelName(3)).toBe(false);
  });
});
