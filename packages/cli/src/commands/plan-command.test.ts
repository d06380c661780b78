import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getModelPreset, validatePlan } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import {
  errorLines,
  hasDuoGates,
  LLAMA_31_GATES,
  runFairkv,
  SHARED_SKIP_MESSAGE,
  temporaryFolder,
} from '../__fixtures__/cli-process.js';

describe.skipIf(!hasDuoGates)(
  'fairkv plan and inspect plan (subprocess, real DuoAttention gates of Llama-3.1-8B)',
  () => {
    const folder = temporaryFolder('plan');
    const planPath = join(folder, 'plan.json');
    const svgPath = join(folder, 'load.svg');
    const profile = `duo:${LLAMA_31_GATES}:sparsity=0.5,context=32768`;

    it('--json prints exactly {results: [{solver, plan, predicted, solveSeconds, optimal}]}, --out writes the best plan, --plot an SVG', async () => {
      const run = await runFairkv([
        'plan',
        '--model',
        'llama-3.1-8b',
        '--profile',
        profile,
        '--devices',
        '8',
        '--solver',
        'contiguous,greedy,fair-copy,ilp',
        '--json',
        '--out',
        planPath,
        '--plot',
        svgPath,
      ]);
      expect(run.stderr + run.stdout).not.toContain(String.fromCharCode(27));
      expect(run.code, run.stderr).toBe(0);
      const output = JSON.parse(run.stdout) as { results: Record<string, unknown>[] };
      expect(Object.keys(output)).toEqual(['results']);
      expect(output.results.map((result) => result.solver)).toEqual(['contiguous', 'greedy', 'fair-copy', 'ilp']);
      const model = getModelPreset('llama-3.1-8b');
      for (const result of output.results) {
        expect(Object.keys(result).sort()).toEqual(['optimal', 'plan', 'predicted', 'solveSeconds', 'solver']);
        expect(validatePlan(result.plan, { model }).issues).toEqual([]);
        expect(result.predicted).toEqual((result.plan as { predicted: unknown }).predicted);
        expect(typeof result.solveSeconds).toBe('number');
      }
      const throughput = (index: number) =>
        (output.results[index]!.predicted as { throughputTokensPerSecond: number }).throughputTokensPerSecond;
      // FairKV on real DuoAttention loads: Fair-Copying beats contiguous tensor parallelism clearly; ILP is at least as good
      expect(throughput(2) / throughput(0)).toBeGreaterThan(1.3);
      expect(throughput(3)).toBeGreaterThanOrEqual(throughput(2) * (1 - 1e-9));
      expect(output.results[3]!.optimal).toBe(true);
      const written = JSON.parse(readFileSync(planPath, 'utf8')) as { solver: string; version: number };
      expect(written.version).toBe(1);
      expect(['fair-copy', 'ilp']).toContain(written.solver);
      const svg = readFileSync(svgPath, 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      for (const label of ['contiguous', 'fair-copy', 'ms / step', 'layer', 'device']) expect(svg).toContain(label);
    });

    it('prints the comparison table; inspect plan validates the written plan and reports a broken one (exit 2)', async () => {
      const table = await runFairkv([
        'plan',
        '--model',
        'llama-3.1-8b',
        '--profile',
        profile,
        '--devices',
        '4',
        '--solver',
        'contiguous,fair-copy',
        '--batch',
        '32',
      ]);
      expect(table.code, table.stderr).toBe(0);
      expect(table.stdout).toMatch(/solver\s+tokens\/s\s+speed-up\s+batch/);
      expect(table.stdout).toMatch(/^contiguous\s.*1\.00x/m);
      expect(table.stdout).toMatch(/^fair-copy\s/m);
      expect(table.stdout).toContain('llama-3.1-8b on 4 x h100-sxm-80g');

      const valid = await runFairkv([
        'inspect',
        'plan',
        planPath,
        '--model',
        'llama-3.1-8b',
        '--cluster',
        'h100-sxm-80g',
      ]);
      expect(valid.code, valid.stderr).toBe(0);
      expect(valid.stdout).toContain(`${planPath}: valid`);
      expect(valid.stdout).toMatch(/device\s+replicas\s+heads served\s+memory\s+KV/);

      const broken = JSON.parse(readFileSync(planPath, 'utf8'));
      broken.layers[2].heads[1].replicas[0].share = 0.5;
      broken.layers[5].heads.pop();
      const brokenPath = join(folder, 'broken.json');
      writeFileSync(brokenPath, JSON.stringify(broken));
      const invalid = await runFairkv(['inspect', 'plan', brokenPath, '--json']);
      expect(invalid.code).toBe(2);
      const report = JSON.parse(invalid.stdout) as { valid: boolean; issues: { path: string }[] };
      expect(report.valid).toBe(false);
      expect(report.issues.map((issue) => issue.path)).toEqual(
        expect.arrayContaining(['$.layers[2].heads[1].replicas', '$.layers[5].heads']),
      );
      expect(errorLines(invalid)).toEqual([expect.stringContaining(`plan ${brokenPath}: invalid`)]);
    });

    /** `fairkv plan --model llama-3.1-8b --profile <duo> --json ...args`: the first result's prediction. */
    const predicted = async (...args: string[]) => {
      const run = await runFairkv(['plan', '--model', 'llama-3.1-8b', '--profile', profile, '--json', ...args]);
      expect(run.code, run.stderr).toBe(0);
      return (JSON.parse(run.stdout).results[0] as { predicted: { stepTimeSeconds: number; maxBatch: number } })
        .predicted;
    };
    /** The one error line of a plan refused for `flag value`. */
    const refusal = async (flag: string, value: string) => {
      const run = await runFairkv(['plan', '--model', 'llama-3.1-8b', '--profile', profile, flag, value]);
      expect(run.code).toBe(1);
      return errorLines(run);
    };

    it('--bandwidth-efficiency stretches the predicted step (KV and weight reads) and keeps the batch', async () => {
      const plan = ['--devices', '4', '--solver', 'fair-copy'];
      const [nominal, half] = [await predicted(...plan), await predicted(...plan, '--bandwidth-efficiency', '0.5')];
      expect(half.maxBatch).toBe(nominal.maxBatch);
      // bytes take twice as long; all-reduces and fixed costs do not
      expect(half.stepTimeSeconds / nominal.stepTimeSeconds).toBeGreaterThan(1.8);
      expect(half.stepTimeSeconds / nominal.stepTimeSeconds).toBeLessThan(2);
      expect(await refusal('--bandwidth-efficiency', '1.5')).toEqual([
        expect.stringMatching(/--bandwidth-efficiency.*expected a number in \(0, 1\]/),
      ]);
    });

    it('--layer-overhead adds its microseconds once per layer and once for the output, and refuses negatives', async () => {
      const plan = ['--devices', '2', '--solver', 'contiguous', '--batch', '16'];
      const [none, calibrated] = [
        await predicted(...plan, '--layer-overhead', '0'),
        await predicted(...plan, '--layer-overhead', '185'),
      ];
      expect(calibrated.stepTimeSeconds - none.stepTimeSeconds).toBeCloseTo((32 + 1) * 185e-6, 9);
      expect(await refusal('--layer-overhead', '-5')).toEqual([expect.stringMatching(/--layer-overhead.*-5/)]);
    });

    it('--calibration takes both constants from a bench result or an e2e calibration, and names what is wrong', async () => {
      const plan = ['--devices', '4', '--solver', 'fair-copy'];
      const write = (name: string, document: unknown) => {
        const path = join(folder, name);
        writeFileSync(path, typeof document === 'string' ? document : JSON.stringify(document));
        return path;
      };
      const constants = { bandwidthEfficiency: 0.9, layerOverheadSeconds: 200e-6 };
      const bench = write('bench-calibrated.json', {
        results: [],
        calibration: { solver: 'contiguous', ...constants },
      });
      const e2e = write('e2e-calibration.json', { benchmark: 'cuda-decode-e2e calibration', ...constants });
      const byFlags = await predicted(...plan, '--bandwidth-efficiency', '0.9', '--layer-overhead', '200');
      for (const file of [bench, e2e]) {
        expect((await predicted(...plan, '--calibration', file)).stepTimeSeconds).toBeCloseTo(
          byFlags.stepTimeSeconds,
          12,
        );
      }
      const human = await runFairkv([
        'plan',
        '--model',
        'llama-3.1-8b',
        '--profile',
        profile,
        ...plan,
        '--calibration',
        bench,
      ]);
      expect(human.stdout).toContain(
        `cost model: bandwidth efficiency 0.9, layer overhead 200 µs (--calibration ${bench})`,
      );
      /** The exit code and one error line of a plan with `--calibration file` and more flags. */
      const failure = async (file: string, ...more: string[]) => {
        const run = await runFairkv([
          'plan',
          '--model',
          'llama-3.1-8b',
          '--profile',
          profile,
          '--calibration',
          file,
          ...more,
        ]);
        return [run.code, ...errorLines(run)];
      };
      expect(await failure(join(folder, 'missing.json'))).toEqual([
        2,
        expect.stringMatching(/--calibration .*missing.json: no such file or directory/),
      ]);
      expect(await failure(write('uncalibrated.json', { results: [], calibration: null }))).toEqual([
        2,
        expect.stringMatching(/that bench ran without --calibrate/),
      ]);
      expect(await failure(write('fast.json', { bandwidthEfficiency: 1.2, layerOverheadSeconds: 0 }))).toEqual([
        2,
        expect.stringMatching(/bandwidthEfficiency: expected a number in \(0, 1\], got 1.2/),
      ]);
      expect(
        await failure(write('negative.json', { calibration: { bandwidthEfficiency: 1, layerOverheadSeconds: -1 } })),
      ).toEqual([2, expect.stringMatching(/layerOverheadSeconds: expected a finite number >= 0, got -1/)]);
      expect(await failure(write('broken.json', '{ nope'))).toEqual([2, expect.stringMatching(/not valid JSON/)]);
      expect(await failure(bench, '--layer-overhead', '5')).toEqual([
        1,
        expect.stringMatching(/--calibration sets both constants: drop --bandwidth-efficiency and --layer-overhead/),
      ]);
    });
  },
);
if (!hasDuoGates) it.skip(SHARED_SKIP_MESSAGE, () => {});
