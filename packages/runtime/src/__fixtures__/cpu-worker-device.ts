/**
 * A backend module for worker-device tests: the CPU backend with the thread count from its options,
 * created the way `@fairkv/kernels-cuda`'s worker device creates a CUDA backend. It records every setup
 * it was called with in a file named by `options.record`, so tests see what each worker received.
 */
import { appendFileSync } from 'node:fs';
import { createCpuBackend } from '@fairkv/kernels';
import type { WorkerDevice, WorkerDeviceSetup } from '../engine/worker-backend.js';

export function createWorkerDevice(setup: WorkerDeviceSetup): WorkerDevice {
  const options = setup.options as { threads: number; record: string };
  appendFileSync(options.record, `${JSON.stringify(setup)}\n`);
  return { backend: createCpuBackend({ threads: options.threads }) };
}
