/**
 * A backend module for worker-device tests: the CPU backend with the thread count from its options,
 * created the way `@fairkv/kernels-cuda`'s worker device creates a CUDA backend. It records every setup
 * it was called with in a file named by `options.record`; with `failDevice` that device fails to start;
 * with `barrier` (an Int32Array on a SharedArrayBuffer) `connect` blocks this thread until every device
 * connected, as NCCL's ncclCommInitRank does.
 */
import { appendFileSync } from 'node:fs';
import { createCpuBackend } from '@fairkv/kernels';
import type { WorkerDevice, WorkerDeviceSetup } from '../engine/worker-backend.js';

interface FixtureOptions {
  threads: number;
  record: string;
  failDevice?: number;
  barrier?: Int32Array;
}

export function createWorkerDevice(setup: WorkerDeviceSetup): WorkerDevice {
  const options = setup.options as FixtureOptions;
  appendFileSync(options.record, `${JSON.stringify({ ...setup, options: { ...options, barrier: undefined } })}\n`);
  if (setup.device === options.failDevice) throw new Error(`simulated start-up failure on device ${setup.device}`);
  const backend = createCpuBackend({ threads: options.threads });
  const barrier = options.barrier;
  if (!barrier) return { backend };
  return {
    backend,
    connect: () => {
      Atomics.add(barrier, 0, 1);
      for (;;) {
        const arrived = Atomics.load(barrier, 0);
        if (arrived >= setup.deviceCount) break;
        Atomics.wait(barrier, 0, arrived);
      }
      Atomics.notify(barrier, 0);
      appendFileSync(options.record, `${JSON.stringify({ connected: setup.device })}\n`);
      return undefined;
    },
  };
}
