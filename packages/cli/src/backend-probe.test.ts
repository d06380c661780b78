import { codeForDevice } from '@fairkv/kernels-cuda';
import { describe, expect, it } from 'vitest';
import { deviceDetail, ncclDetail } from './backend-probe.js';

describe('inspect backends: the NCCL part of the cuda line', () => {
  it('spells NCCL_VERSION_CODE as major.minor.patch, or says why NCCL is missing', () => {
    expect(ncclDetail({ available: true, version: 22703, error: '' })).toBe('NCCL 2.27.3');
    expect(ncclDetail({ available: false, version: 0, error: 'libnccl.so.2: cannot open shared object file' })).toBe(
      'NCCL unavailable (one GPU only): libnccl.so.2: cannot open shared object file',
    );
  });
});

describe('inspect backends: a GPU on the cuda line', () => {
  const h100 = { name: 'NVIDIA H100 80GB HBM3', computeCapability: '9.0' };
  const build = { nvcc: 'Build cuda_13.0', probeOnly: false, architectures: ['sm_80', 'sm_90a', 'compute_90'] };

  it('names the code of the addon build the GPU runs', () => {
    expect(deviceDetail(h100, build, codeForDevice)).toBe('NVIDIA H100 80GB HBM3 (compute 9.0, runs sm_90a)');
    expect(deviceDetail({ name: 'NVIDIA B200', computeCapability: '10.0' }, build, codeForDevice)).toBe(
      'NVIDIA B200 (compute 10.0, runs compute_90 PTX (compiled by the driver at load time))',
    );
  });

  it('says when the build holds no code for the GPU, and how to get it', () => {
    expect(deviceDetail({ name: 'Tesla T4', computeCapability: '7.5' }, build, codeForDevice)).toBe(
      'Tesla T4 (compute 7.5: no code in this addon build of sm_80, sm_90a, compute_90; rebuild with FAIRKV_CUDA_ARCHS including it)',
    );
  });

  it('gives the capability alone when the addon has no build record', () => {
    expect(deviceDetail(h100, undefined, codeForDevice)).toBe('NVIDIA H100 80GB HBM3 (compute 9.0)');
  });
});
