import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes a benchmark's report as indented JSON to `<benchRoot>/results/<fileName>`, and also to
 * `$OUT/<fileName>` when OUT is set (what the GPU machine hands back).
 */
export function writeResult(benchRoot: string, fileName: string, report: unknown): void {
  const json = `${JSON.stringify(report, null, 2)}\n`;
  mkdirSync(join(benchRoot, 'results'), { recursive: true });
  writeFileSync(join(benchRoot, 'results', fileName), json);
  if (process.env.OUT) writeFileSync(join(process.env.OUT, fileName), json);
}
