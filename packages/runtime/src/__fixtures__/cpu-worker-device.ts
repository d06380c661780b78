/**
 * A backend module for worker-device tests: the CPU backend with the thread count from its options,
 * created the way `@fairkv/kernels-cuda`'s worker device creates a CUDA backend. It records every setup
 * it was called with in a file named by `options.record`; with `failDevice` that device fails to start;
 * with `barrier` (an Int32Array on a SharedArrayBuffer) `connect` blocks this thread until every device
 * connected, as NCCL's ncclCommInitRank does; with `failRun` one device's backend throws at the given
 * call of a kernel (a launch failure part-way through a prefill or a decode step, while the other
 * devices go on into an all-reduce); with `failConnect` one device fails to connect while the others wait
 * for it. `abortWorkerDevices` records that the coordinator called it.
 */
import { appendFileSync } from 'node:fs';
import { createCpuBackend } from '@fairkv/kernels';
import type { WorkerDevice, WorkerDeviceSetup } from '../engine/worker-backend.js';

interface FixtureOptions {
  threads: number;
  record: string;
  failDevice?: number;
  barrier?: Int32Array;
  /** Device `device` throws at its `call`-th (1-based) run of `kernel`. */
  failRun?: { device: number; kernel: string; call: number };
  /**
   * This device fails to connect, while the others' `connect` waits for it without end (a promise that
   * never settles), as an NCCL init on its own thread waits for a rank that never joins.
   */
  failConnect?: number;
}

/** Called by the coordinator (its own thread) when a device failed. */
export function abortWorkerDevices(options: unknown): void {
  const { record } = options as FixtureOptions;
  appendFileSync(record, `${JSON.stringify({ aborted: true })}\n`);
}

export function createWorkerDevice(setup: WorkerDeviceSetup): WorkerDevice {
  const options = setup.options as FixtureOptions;
  appendFileSync(options.record, `${JSON.stringify({ ...setup, options: { ...options, barrier: undefined } })}\n`);
  if (setup.device === options.failDevice) throw new Error(`simulated start-up failure on device ${setup.device}`);
  const backend = createCpuBackend({ threads: options.threads });
  const failRun = options.failRun;
  if (failRun?.device === setup.device) {
    const run = backend.run.bind(backend);
    let calls = 0;
    backend.run = (kernel, args) => {
      if (kernel === failRun.kernel && ++calls === failRun.call) {
        throw new Error(`simulated launch failure of ${kernel} on device ${setup.device}`);
      }
      run(kernel, args);
    };
  }
  if (options.failConnect !== undefined) {
    const failing = setup.device === options.failConnect;
    return {
      backend,
      connect: () =>
        failing
          ? Promise.reject(new Error(`simulated connect failure on device ${setup.device}`))
          : new Promise<undefined>(() => {}),
    };
  }
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
