import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * Workspace packages resolve to their TypeScript sources, so `npm test` needs no prior build.
 * The mapping is read from tsconfig.base.json `paths`, the single source of truth shared with tsc.
 */
const root = fileURLToPath(new URL('.', import.meta.url));
const base = JSON.parse(readFileSync(new URL('./tsconfig.base.json', import.meta.url), 'utf8')) as {
  compilerOptions: { paths: Record<string, string[]> };
};
const alias = Object.entries(base.compilerOptions.paths)
  // longest specifiers first so `@fairkv/placement/ilp` wins over `@fairkv/placement`
  .sort(([a], [b]) => b.length - a.length)
  .map(([specifier, [target]]) => ({
    find: new RegExp(`^${specifier.replace(/[/.]/g, '\\$&')}$`),
    replacement: `${root}${target}`,
  }));

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'bench/**/*.test.ts', 'scripts/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
