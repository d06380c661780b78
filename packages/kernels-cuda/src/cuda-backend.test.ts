import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BackendError } from '@fairkv/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCudaBackend, probeCuda } from './index.js';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildScript = join(packageRoot, 'scripts', 'build-native.mjs');
const fullAddon = join(packageRoot, 'build', 'Release', 'fairkv_cuda.node');
const probeOnlyAddon = join(packageRoot, 'build', 'probe-only', 'fairkv_cuda.node');

const { findNvcc } = (await import(pathToFileURL(buildScript).href)) as { findNvcc: () => string | null };
const nvcc = findNvcc();
if (nvcc === null) console.warn('[kernels-cuda] nvcc not found: skipping the addon build-and-load tests');

/**
 * CI (nvcc, no GPU): compile the addon (the full build when present, else the host-only
 * `--probe-only` build, which takes seconds instead of minutes) and check that it loads and reports
 * the missing GPU as a clean BackendError, through the child-process probe.
 */
describe.skipIf(nvcc === null)('CUDA addon on this machine', () => {
  let addon: string;
  beforeAll(async () => {
    if (existsSync(fullAddon)) {
      addon = fullAddon;
    } else {
      const { execFileSync } = await import('node:child_process');
      execFileSync(process.execPath, [buildScript, '--probe-only'], { stdio: 'inherit' });
      addon = probeOnlyAddon;
    }
    process.env.FAIRKV_CUDA_ADDON = addon;
  }, 180_000);

  it('builds a loadable .node binary', () => {
    expect(statSync(addon).size).toBeGreaterThan(100_000);
  });

  it('probes in a child process and reports why CUDA is unavailable, or finds devices', () => {
    const probe = probeCuda({ refresh: true });
    if (probe.available) {
      expect(probe.devices.length).toBeGreaterThan(0);
      expect(probe.devices[0]!.name).toMatch(/\S/);
    } else {
      // No GPU here: cudaErrorInsufficientDriver (35) without a driver, or cudaErrorNoDevice (100).
      expect(probe.reason).toMatch(/cudaError\w+ \(\d+\)|no CUDA device/);
      expect(probe.probe?.runtimeVersion).toBeGreaterThanOrEqual(12000);
    }
  });

  it('createCudaBackend throws BackendError "CUDA backend unavailable: <reason>" without a GPU', () => {
    const probe = probeCuda({ refresh: true });
    if (probe.available) {
      const backend = createCudaBackend();
      expect(backend.capabilities.name).toBe('cuda');
      backend.dispose();
      return;
    }
    let thrown: unknown;
    try {
      createCudaBackend();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(BackendError);
    expect((thrown as BackendError).code).toBe('FAIRKV_BACKEND');
    expect((thrown as Error).message).toBe(`CUDA backend unavailable: ${probe.reason}`);
  });
});

describe('CUDA backend without an addon', () => {
  it('reports a missing build as the reason', () => {
    const saved = process.env.FAIRKV_CUDA_ADDON;
    process.env.FAIRKV_CUDA_ADDON = join(packageRoot, 'build', 'does-not-exist.node');
    try {
      const probe = probeCuda({ refresh: true });
      expect(probe.available).toBe(false);
      expect(probe.available ? '' : probe.reason).toMatch(/the addon is not built/);
      expect(() => createCudaBackend()).toThrow(/^CUDA backend unavailable: the addon is not built/);
    } finally {
      if (saved === undefined) delete process.env.FAIRKV_CUDA_ADDON;
      else process.env.FAIRKV_CUDA_ADDON = saved;
      probeCuda({ refresh: true });
    }
  });
});

describe('probe isolation', () => {
  it('reports an addon that fails to load without harming this process', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const directory = mkdtempSync(join(tmpdir(), 'fairkv-cuda-'));
    const broken = join(directory, 'broken.node');
    writeFileSync(broken, 'not an ELF shared object');
    const saved = process.env.FAIRKV_CUDA_ADDON;
    process.env.FAIRKV_CUDA_ADDON = broken;
    try {
      const probe = probeCuda({ refresh: true });
      expect(probe.available).toBe(false);
      expect(probe.available ? '' : probe.reason).toMatch(/^loading the addon failed \(exit code 1\)/);
    } finally {
      if (saved === undefined) delete process.env.FAIRKV_CUDA_ADDON;
      else process.env.FAIRKV_CUDA_ADDON = saved;
      probeCuda({ refresh: true });
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
