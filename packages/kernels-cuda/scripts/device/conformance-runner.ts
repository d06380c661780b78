/**
 * Runs the backend conformance suite of `@fairkv/kernels/testing` against the CUDA backend on a GPU
 * machine without node_modules: bundled by esbuild (see run-device.sh) with vitest replaced by
 * vitest-shim.ts. Prints one line per test and a summary, and writes JSON to $OUT (or the cwd).
 *
 * Repeats the whole suite FAIRKV_CONFORMANCE_REPEATS times (default 1): fresh random inputs each time.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeBackendConformance } from '@fairkv/kernels/testing';
import { describe, expect, it } from 'vitest';
import { createCudaBackend } from '../../src/index.js';
import { runRegistered, type ShimResult } from './vitest-shim.js';

const repeats = Number(process.env.FAIRKV_CONFORMANCE_REPEATS ?? '1');
const probeBackend = createCudaBackend();
const capabilities = probeBackend.capabilities;
const device = probeBackend.deviceProperties;
probeBackend.dispose();

for (let repeat = 0; repeat < repeats; repeat++) describeBackendConformance(() => createCudaBackend(), capabilities);

// The addon's own environment switches, read when a context is created (not part of the contract).
describe('CUDA backend environment', () => {
  const refuses = (name: string, value: string, message: RegExp) => {
    const saved = process.env[name];
    process.env[name] = value;
    try {
      expect(() => createCudaBackend().dispose()).toThrow(message);
    } finally {
      if (saved === undefined) delete process.env[name];
      else process.env[name] = saved;
    }
  };
  it('refuses an unknown FAIRKV_CUDA_MATMUL_PATH, naming the variable and the value', () => {
    refuses('FAIRKV_CUDA_MATMUL_PATH', '7', /FAIRKV_CUDA_MATMUL_PATH must be 0, 1, 2, 3 or 4, got "7"/);
  });
  it('refuses an unknown FAIRKV_CUDA_GEMV, naming the variable and the value', () => {
    refuses('FAIRKV_CUDA_GEMV', 'off', /FAIRKV_CUDA_GEMV must be 0 or 1, got "off"/);
  });
});

const started = Date.now();
const results: ShimResult[] = await runRegistered((result) => {
  if (result.status === 'failed') console.log(`FAIL ${result.name}\n     ${result.error}`);
  else if (process.env.FAIRKV_CONFORMANCE_VERBOSE) console.log(`${result.status} ${result.name}`);
});
const count = (status: ShimResult['status']) => results.filter((result) => result.status === status).length;
const summary = {
  device: device.name,
  computeCapability: device.computeCapability,
  repeats,
  passed: count('passed'),
  failed: count('failed'),
  skipped: count('skipped'),
  seconds: (Date.now() - started) / 1000,
  failures: results.filter((result) => result.status === 'failed'),
  results,
};
writeFileSync(join(process.env.OUT ?? '.', 'conformance.json'), `${JSON.stringify(summary, null, 2)}\n`);
console.log(
  `conformance on ${device.name}: ${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped in ${summary.seconds.toFixed(1)} s`,
);
process.exitCode = summary.failed > 0 ? 1 : 0;
