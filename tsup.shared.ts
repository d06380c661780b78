import { defineConfig, type Options } from 'tsup';

/**
 * The one tsup template every published package uses: ESM + CJS + .d.ts, one file per entry,
 * workspace dependencies kept external (tsup externalises everything in `dependencies`).
 */
export function packageConfig(entry: Record<string, string> = { index: 'src/index.ts' }, extra: Options = {}) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    platform: 'node',
    splitting: false,
    treeshake: true,
    ...extra,
  });
}
