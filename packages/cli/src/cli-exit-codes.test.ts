import { describe, expect, it } from 'vitest';
import { errorLines, runFairkv } from './__fixtures__/cli-process.js';

/** The exit statuses through the real executable (flags.test.ts covers many more cases in-process). */
describe('fairkv exit statuses (subprocess)', () => {
  it('1 for a bad flag value and 2 for a missing file, each in one stderr line naming it; 0 for --help', async () => {
    const usage = await runFairkv(['plan', '--model', 'llama-3.1-8b', '--profile', 'p.json', '--devices', 'many']);
    expect(usage.code).toBe(1);
    expect(usage.stdout).toBe('');
    expect(errorLines(usage)).toEqual([expect.stringMatching(/--devices <n>' argument 'many' is invalid/)]);

    const missing = await runFairkv(['generate', '--prompt', 'x', '--plan', 'no/such/plan.json', '--devices', '2']);
    expect(missing.code).toBe(2);
    expect(errorLines(missing)).toEqual(['fairkv: --plan no/such/plan.json: no such file or directory']);

    const help = await runFairkv(['bench', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Examples:');
    expect(help.stdout).toContain('--concurrency <n>');
  });
});
