/**
 * The CUDA worker device of `@fairkv/kernels-cuda` with a fault injected for fault-check.ts: with
 * `options.failRun` one device's backend throws at the given call of a kernel, as a failed launch
 * would, part-way through a prefill or a decode step; with `options.failConnect` that device fails to join
 * the NCCL group (the others are already waiting in theirs). Everything else is the real worker device
 * (its NCCL rank, its abort). Bundled beside the CLI's worker bundles by bundle-device.sh.
 */
import type { Backend } from '@fairkv/kernels';
import {
  abortWorkerDevices as abortCudaWorkerDevices,
  type CudaWorkerDeviceSetup,
  createWorkerDevice as createCudaWorkerDevice,
} from '../../src/worker-device.js';

/** Which call fails: device `device`'s `call`-th (1-based) run of `kernel`. */
export interface FailRun {
  device: number;
  kernel: string;
  call: number;
}

export function createWorkerDevice(setup: CudaWorkerDeviceSetup) {
  const { failRun, failConnect, ...options } = setup.options as { failRun?: FailRun; failConnect?: number };
  const device = createCudaWorkerDevice({ ...setup, options });
  if (failConnect === setup.device && device.connect) {
    // its NCCL rank never joins: the other devices wait in their ncclCommInitRank
    device.connect = async () => {
      throw new Error(`simulated NCCL init failure on device ${setup.device}`);
    };
  }
  if (failRun?.device === setup.device) {
    const backend: Backend = device.backend;
    const run = backend.run.bind(backend);
    let calls = 0;
    backend.run = (kernel, args) => {
      if (kernel === failRun.kernel && ++calls === failRun.call) {
        throw new Error(`simulated launch failure of ${kernel} (call ${calls}) on device ${setup.device}`);
      }
      run(kernel, args);
    };
  }
  return device;
}

/** The real abort, timed (fault-check prints when the coordinator called it and when it returned). */
export async function abortWorkerDevices(options: unknown): Promise<void> {
  const started = performance.now();
  console.error(`[fault] coordinator aborts the NCCL ranks`);
  await abortCudaWorkerDevices(options);
  console.error(`[fault] abort returned after ${(performance.now() - started).toFixed(1)} ms`);
}
