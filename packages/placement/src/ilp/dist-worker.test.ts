import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('../../', import.meta.url));
const coreDist = fileURLToPath(new URL('../../../core/dist/index.js', import.meta.url));
const built = existsSync(`${packageDir}dist/ilp.js`) && existsSync(`${packageDir}dist/ilp.cjs`) && existsSync(coreDist);

// The worker's program is evaluated from a string and imports glpk.js by the URL the main thread resolves;
// this checks that path from the built files (ESM and CJS) in a plain Node process.
const script = (loader: string) => `
${loader}
const { getModelPreset, createCluster } = core;
const model = { ...getModelPreset('llama-3.1-8b'), layerCount: 2 };
const profile = { version: 1, layerCount: 2, kvHeadCount: 8, contextLength: 4096, mean: [[4096, 10, 20, 300, 4000, 50, 60, 70], [1, 2, 3, 4, 5, 6, 7, 4096]], sampleCount: 1, policy: { name: 't', settings: {} }, source: 'test' };
const cluster = createCluster('h100-sxm-80g', 2);
cluster.devices[1].memoryBandwidthBytesPerSecond = 2e12;
ilp.solveIlp({ model, profile, cluster, batch: 8, method: 'milp', options: { worker: true } }).then((result) => {
  process.stdout.write(JSON.stringify({ mode: result.mode, optimal: result.optimal, solver: result.plan.solver, warnings: result.warnings }));
});
`;

describe('ilp worker from the built package (dist)', () => {
  it.skipIf(!built)(
    'runs glpk.js in a worker thread from dist/ilp.js and dist/ilp.cjs (skipped until built: npx turbo run build --filter=@fairkv/placement)',
    () => {
      const esm = `const core = await import(${JSON.stringify(coreDist)}); const ilp = await import(${JSON.stringify(`${packageDir}dist/ilp.js`)});`;
      const cjs = `const core = require(${JSON.stringify(coreDist.replace(/\.js$/, '.cjs'))}); const ilp = require(${JSON.stringify(`${packageDir}dist/ilp.cjs`)});`;
      for (const [flag, loader] of [
        ['--input-type=module', esm],
        ['--input-type=commonjs', cjs],
      ] as const) {
        const output = execFileSync(process.execPath, [flag, '-e', script(loader)], {
          cwd: packageDir,
          encoding: 'utf8',
          timeout: 60_000,
        });
        const result = JSON.parse(output) as { mode: string; optimal: boolean; solver: string; warnings: string[] };
        expect(result.mode).toBe('worker');
        expect(result.solver).toBe('ilp');
        expect(result.optimal).toBe(true);
        expect(result.warnings.filter((warning) => warning.includes('worker'))).toEqual([]);
      }
    },
  );
});
