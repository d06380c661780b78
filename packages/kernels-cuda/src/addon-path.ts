/**
 * Where the CUDA addon binary lives: `$FAIRKV_CUDA_ADDON` when set, else
 * `build/Release/fairkv_cuda.node` in this package (written by `scripts/build-native.mjs`; the
 * package's `src/` and `dist/` both sit one level below its root).
 *
 * @packageDocumentation
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Relative location of the addon inside the package. */
export const ADDON_RELATIVE_PATH = join('build', 'Release', 'fairkv_cuda.node');

/** Absolute path of the addon binary to load. */
export function addonPath(): string {
  const override = process.env.FAIRKV_CUDA_ADDON;
  if (override !== undefined && override !== '') return override;
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, '..', ADDON_RELATIVE_PATH);
}
