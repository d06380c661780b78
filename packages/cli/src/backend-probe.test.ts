import { describe, expect, it } from 'vitest';
import { ncclDetail } from './backend-probe.js';

describe('inspect backends: the NCCL part of the cuda line', () => {
  it('spells NCCL_VERSION_CODE as major.minor.patch, or says why NCCL is missing', () => {
    expect(ncclDetail({ available: true, version: 22703, error: '' })).toBe('NCCL 2.27.3');
    expect(ncclDetail({ available: false, version: 0, error: 'libnccl.so.2: cannot open shared object file' })).toBe(
      'NCCL unavailable (one GPU only): libnccl.so.2: cannot open shared object file',
    );
  });
});
