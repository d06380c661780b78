/**
 * What `fairkv inspect backends` reports: for each backend, whether it works on this machine (and why
 * not), and whether the runtime can run models on it yet.
 *
 * @packageDocumentation
 */

/** One backend's status. */
export interface BackendStatus {
  name: 'cpu' | 'cuda' | 'webgpu';
  /** Whether the backend's kernels can run on this machine. */
  available: boolean;
  /** Whether `generate`, `bench` and `demo` can run models on it (the runtime's backend names). */
  runtimeSupported: boolean;
  /** Devices found, or why the backend is unavailable. */
  detail: string;
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
    const { probeCuda } = await import('@fairkv/kernels-cuda');
    const probe = probeCuda();
    statuses.push({
      name: 'cuda',
      available: probe.available,
      runtimeSupported: false,
      detail: probe.available
        ? `${probe.devices.length} device(s): ${probe.devices.map((device) => device.name).join(', ')}`
        : probe.reason,
    });
  } catch (error) {
    statuses.push({
      name: 'cuda',
      available: false,
      runtimeSupported: false,
      detail: `@fairkv/kernels-cuda failed to load: ${(error as Error).message}`,
    });
  }
  try {
    const { probeWebGpu } = await import('@fairkv/kernels-webgpu');
    const probe = await probeWebGpu();
    statuses.push({
      name: 'webgpu',
      available: probe.available,
      runtimeSupported: false,
      detail: probe.available
        ? `${probe.provider}: ${probe.adapter.description || probe.adapter.device || probe.adapter.vendor}${probe.adapter.isFallbackAdapter ? ' (fallback adapter)' : ''}`
        : probe.reason,
    });
  } catch (error) {
    statuses.push({
      name: 'webgpu',
      available: false,
      runtimeSupported: false,
      detail: `@fairkv/kernels-webgpu failed to load: ${(error as Error).message}`,
    });
  }
  return statuses;
}
