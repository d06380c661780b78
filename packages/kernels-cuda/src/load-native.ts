/**
 * Loads the CUDA addon into this process, only after {@link probeCuda} succeeded in a child
 * process, and caches it.
 *
 * @packageDocumentation
 */
import { createRequire } from 'node:module';
import { BackendError } from '@fairkv/core';
import type { NativeAddon } from './native.js';
import { type CudaProbeResult, probeCuda } from './probe.js';

let loaded: NativeAddon | undefined;

/** The probe result and the loaded addon; throws `BackendError("CUDA backend unavailable: <reason>")`. */
export function loadNativeAddon(): { addon: NativeAddon; probe: Extract<CudaProbeResult, { available: true }> } {
  const probe = probeCuda();
  if (!probe.available) throw new BackendError(`CUDA backend unavailable: ${probe.reason}`);
  if (loaded === undefined) {
    const require = createRequire(import.meta.url);
    try {
      loaded = require(probe.addonPath) as NativeAddon;
    } catch (error) {
      throw new BackendError(
        `CUDA backend unavailable: loading ${probe.addonPath} failed: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }
  return { addon: loaded, probe };
}
