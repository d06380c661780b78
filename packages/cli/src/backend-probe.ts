/**
 * What `fairkv inspect backends` reports: for each backend, whether it works on this machine (and why
 * not), and whether the runtime can run models on it yet.
 *
 * @packageDocumentation
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { AddonBuild, codeForDevice } from '@fairkv/kernels-cuda';

/** One backend's status. */
export interface BackendStatus {
  name: 'cpu' | 'cuda' | 'webgpu';
  /** Whether the backend's kernels can run on this machine. */
  available: boolean;
  /** Whether `fairkv generate --backend` can run models on it. */
  runtimeSupported: boolean;
  /** Devices found, or why the backend is unavailable. */
  detail: string;
}

/** NCCL's status for the cuda line: several GPUs need it. */
export function ncclDetail(nccl: { available: boolean; version: number; error: string }): string {
  if (!nccl.available) return `NCCL unavailable (one GPU only): ${nccl.error}`;
  const major = Math.floor(nccl.version / 10000);
  const minor = Math.floor((nccl.version % 10000) / 100);
  return `NCCL ${major}.${minor}.${nccl.version % 100}`;
}

/**
 * A GPU on the cuda line: its name, and which code of the addon's build it runs (`sm_90a`: Hopper's own,
 * with the warpgroup-MMA matmul; a PTX target: compiled by the driver at load time), or that the build
 * holds none for it (kernels would fail to launch: rebuild with its capability in FAIRKV_CUDA_ARCHS).
 * `codeFor` is `@fairkv/kernels-cuda`'s `codeForDevice` (that package is imported only when probing).
 */
export function deviceDetail(
  device: { name: string; computeCapability: string },
  build: AddonBuild | undefined,
  codeFor: typeof codeForDevice,
): string {
  if (build === undefined) return `${device.name} (compute ${device.computeCapability})`;
  const code = codeFor(build, device.computeCapability);
  return code === undefined
    ? `${device.name} (compute ${device.computeCapability}: no code in this addon build of ${build.architectures.join(', ')}; rebuild with FAIRKV_CUDA_ARCHS including it)`
    : `${device.name} (compute ${device.computeCapability}, runs ${code})`;
}

/** Probes every backend: cpu always works; cuda loads its addon in a child process; webgpu asks Dawn for an adapter. */
export async function probeBackends(): Promise<BackendStatus[]> {
  const statuses: BackendStatus[] = [
    {
      name: 'cpu',
      available: true,
      runtimeSupported: true,
      detail: 'reference backend in JavaScript; one worker thread per device',
    },
  ];
  try {
    const { codeForDevice, probeCuda } = await import('@fairkv/kernels-cuda');
    const probe = probeCuda();
    statuses.push({
      name: 'cuda',
      available: probe.available,
      runtimeSupported: true,
      detail: probe.available
        ? `${probe.devices.length} device(s): ${probe.devices
            .map((device) => deviceDetail(device, probe.build, codeForDevice))
            .join(', ')}; ${ncclDetail(probe.libraries.nccl)}`
        : probe.reason,
    });
  } catch (error) {
    statuses.push({
      name: 'cuda',
      available: false,
      runtimeSupported: true,
      detail: `@fairkv/kernels-cuda failed to load: ${(error as Error).message}`,
    });
  }
  statuses.push((await probeWebGpuInChild()) ?? (await probeWebGpuHere()));
  return statuses;
}

type WebGpuProbeResult =
  | {
      available: true;
      provider: string;
      adapter: { description: string; device: string; vendor: string; isFallbackAdapter: boolean };
    }
  | { available: false; reason: string };

function webGpuStatus(probe: WebGpuProbeResult): BackendStatus {
  return {
    name: 'webgpu',
    available: probe.available,
    runtimeSupported: false,
    detail: probe.available
      ? `${probe.provider}: ${probe.adapter.description || probe.adapter.device || probe.adapter.vendor}${probe.adapter.isFallbackAdapter ? ' (fallback adapter)' : ''}`
      : probe.reason,
  };
}

async function probeWebGpuHere(): Promise<BackendStatus> {
  try {
    const { probeWebGpu } = await import('@fairkv/kernels-webgpu');
    return webGpuStatus(await probeWebGpu());
  } catch (error) {
    return {
      name: 'webgpu',
      available: false,
      runtimeSupported: false,
      detail: `@fairkv/kernels-webgpu failed to load: ${(error as Error).message}`,
    };
  }
}

/**
 * Probes WebGPU in a child Node process, because Dawn writes its Vulkan loader warnings straight to the
 * process's stderr. Returns undefined when the child cannot be run (the caller then probes here).
 */
async function probeWebGpuInChild(timeoutMs = 60_000): Promise<BackendStatus | undefined> {
  let moduleUrl: string;
  const loader: string[] = [];
  try {
    moduleUrl = import.meta.resolve('@fairkv/kernels-webgpu');
    // from the TypeScript sources (a checkout), the child needs tsx as well
    if (/\.[cm]?ts$/.test(new URL(moduleUrl).pathname)) {
      loader.push('--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href);
    }
  } catch {
    return undefined;
  }
  const script =
    `import(${JSON.stringify(moduleUrl)}).then(async (m) => process.stdout.write(JSON.stringify(await m.probeWebGpu())))` +
    '.then(() => process.exit(0), (e) => { process.stdout.write(JSON.stringify({ available: false, reason: String((e && e.message) || e) })); process.exit(0); });';
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...loader, '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: timeoutMs,
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.on('error', () => resolve(undefined));
    child.on('close', () => {
      try {
        resolve(webGpuStatus(JSON.parse(stdout) as WebGpuProbeResult));
      } catch {
        resolve(undefined);
      }
    });
  });
}
