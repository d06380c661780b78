/**
 * `describeBackendConformance`: the one suite every fairkv backend runs (vitest). Kernel cases are
 * data (`cases/`), checked against float64 references with per-dtype tolerances, on fresh random
 * inputs each run, with outputs poisoned before each run; NaN never passes; skips come only from
 * the declared capabilities.
 *
 * @packageDocumentation
 */
import { KERNEL_NAMES } from '@fairkv/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, BackendCapabilities, BackendFactory } from '../backend.js';
import { describeBufferContract } from './buffer-contract.js';
import { CONFORMANCE_CASES } from './cases/index.js';
import type { ConformanceCase } from './conformance-case.js';
import { describeGraphStepContract } from './graph-step-contract.js';
import { CaseContext } from './harness.js';
import { createRandom, freshSeed } from './random.js';
import { CONFORMANCE_TOLERANCES } from './tolerance.js';

/** Why a case is skipped for these capabilities, or undefined when it runs. */
export function skipReason(testCase: ConformanceCase, capabilities: BackendCapabilities): string | undefined {
  if (!capabilities.kernels.includes(testCase.kernel)) return `kernel ${testCase.kernel} not declared`;
  if (!capabilities.storageDTypes.includes(testCase.storageDType)) return `dtype ${testCase.storageDType} not declared`;
  if (
    testCase.headDim !== undefined &&
    capabilities.headDims !== 'any' &&
    !capabilities.headDims.includes(testCase.headDim)
  ) {
    return `head dim ${testCase.headDim} not declared`;
  }
  return undefined;
}

/**
 * Registers the conformance suite for a backend: the buffer contract, graph steps (where declared),
 * then every kernel case.
 * `capabilities` is what the backend declares (the suite checks the backend reports exactly this);
 * cases for kernels, dtypes or head dims it leaves out are skipped, and nothing else is.
 *
 * ```ts
 * import { describeBackendConformance } from '@fairkv/kernels/testing';
 * describeBackendConformance(() => createCpuBackend(), createCpuBackend().capabilities);
 * ```
 */
export function describeBackendConformance(createBackend: BackendFactory, capabilities: BackendCapabilities): void {
  describe(`backend conformance: ${capabilities.name}`, () => {
    let backend: Backend | undefined;
    const current = (): Backend => {
      if (backend === undefined) throw new Error('the backend was not created');
      return backend;
    };
    beforeAll(async () => {
      backend = await createBackend();
    });
    afterAll(() => backend?.dispose());

    describe('buffers and queue', () => describeBufferContract(current, createBackend, capabilities));
    describe('graph steps', () => describeGraphStepContract(current, capabilities));

    for (const kernel of KERNEL_NAMES) {
      describe(kernel, () => {
        for (const testCase of CONFORMANCE_CASES.filter((c) => c.kernel === kernel)) {
          const reason = skipReason(testCase, capabilities);
          const title = reason === undefined ? testCase.name : `${testCase.name} (skipped: ${reason})`;
          it.skipIf(reason !== undefined)(title, async () => {
            const seed = freshSeed();
            const before = current().memory().allocatedBytes;
            const context = new CaseContext(current(), `${kernel} ${testCase.name}`, seed);
            try {
              await testCase.execute(context, createRandom(seed), CONFORMANCE_TOLERANCES[testCase.storageDType]);
            } finally {
              context.dispose();
            }
            expect(current().memory().allocatedBytes, 'bytes held after the case released its buffers').toBe(before);
          });
        }
      });
    }
  });
}
