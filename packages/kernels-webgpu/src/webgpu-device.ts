import { BackendError } from '@fairkv/core';

/** What the adapter says about itself. */
export interface WebGpuAdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for software/fallback adapters such as SwiftShader. */
  isFallbackAdapter: boolean;
  /** Optional features, e.g. `shader-f16`. */
  features: string[];
}

/** A WebGPU device ready for compute, with the adapter it came from. */
export interface WebGpuContext {
  device: GPUDevice;
  adapter: WebGpuAdapterSummary;
  /** Where the implementation came from: `navigator.gpu` in browsers, `dawn` (npm `webgpu`) in Node. */
  provider: 'navigator.gpu' | 'dawn';
  /** Destroys the device. */
  dispose(): void;
}

/** Options of {@link requestWebGpuDevice}. */
export interface RequestWebGpuOptions {
  /** Ask for a high-performance or low-power adapter (default high-performance). */
  powerPreference?: GPUPowerPreference;
  /** Extra Dawn toggles for Node, e.g. `['enable-dawn-features=allow_unsafe_apis']`. */
  dawnOptions?: string[];
}

/**
 * Dawn instances, one per set of Dawn options, kept for the life of the process. Garbage-collecting a
 * Dawn instance while another instance's device has work in flight crashes the process (measured with
 * SwiftShader: a probe's instance collected during a later `mapAsync` aborted 20 of 20 runs), so every
 * device of this process comes from one instance that is never released.
 */
const dawnInstances = new Map<string, GPU>();

async function getGpu(options: RequestWebGpuOptions): Promise<{ gpu: GPU; provider: WebGpuContext['provider'] }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu, provider: 'navigator.gpu' };
  const key = JSON.stringify(options.dawnOptions ?? []);
  const cached = dawnInstances.get(key);
  if (cached) return { gpu: cached, provider: 'dawn' };
  let dawn: { create: (options: string[]) => GPU; globals: Record<string, unknown> };
  try {
    dawn = (await import('webgpu')) as unknown as typeof dawn;
  } catch (error) {
    throw new BackendError(
      `WebGPU backend unavailable: no navigator.gpu and the npm package "webgpu" (Dawn) failed to load: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  // Dawn needs the WebGPU enums (GPUBufferUsage, GPUShaderStage...) as globals, as browsers provide them.
  for (const [name, value] of Object.entries(dawn.globals)) {
    if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
  }
  // a concurrent caller may have created the instance while this one awaited the import
  const gpu = dawnInstances.get(key) ?? dawn.create(options.dawnOptions ?? []);
  dawnInstances.set(key, gpu);
  return { gpu, provider: 'dawn' };
}

/**
 * Requests a WebGPU device: `navigator.gpu` in browsers, Dawn (npm `webgpu`) in Node. Without a Vulkan,
 * Metal or D3D12 driver Dawn finds no adapter; on Linux without a GPU, SwiftShader's Vulkan driver works
 * (docs/backends/webgpu.md).
 * @throws BackendError "WebGPU backend unavailable: <reason>".
 */
export async function requestWebGpuDevice(options: RequestWebGpuOptions = {}): Promise<WebGpuContext> {
  const { gpu, provider } = await getGpu(options);
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) {
    const hint =
      provider === 'dawn'
        ? ' (Dawn found no Vulkan driver; on a machine without a GPU install libvulkan1 and point VK_ICD_FILENAMES at SwiftShader, see docs/backends/webgpu.md)'
        : '';
    throw new BackendError(`WebGPU backend unavailable: ${provider} returned no adapter${hint}`);
  }
  const info = adapter.info;
  const features = [...adapter.features].map(String).sort();
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
    },
  });
  const summary: WebGpuAdapterSummary = {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: Boolean(
      (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
        (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
    ),
    features,
  };
  return { device, adapter: summary, provider, dispose: () => device.destroy() };
}

/** Result of {@link probeWebGpu}: never throws. */
export type WebGpuProbe =
  | { available: true; adapter: WebGpuAdapterSummary; provider: WebGpuContext['provider'] }
  | { available: false; reason: string };

/** Reports whether WebGPU works here, and why not when it does not. */
export async function probeWebGpu(options: RequestWebGpuOptions = {}): Promise<WebGpuProbe> {
  try {
    const context = await requestWebGpuDevice(options);
    context.dispose();
    return { available: true, adapter: context.adapter, provider: context.provider };
  } catch (error) {
    return { available: false, reason: (error as Error).message };
  }
}
