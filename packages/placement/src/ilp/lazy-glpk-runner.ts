import type { Result } from 'glpk.js/node';
import { createGlpkRunner, type GlpkJob, type GlpkRunner } from './glpk-runner.js';

/** Starts glpk.js (worker or not) on the first MILP only: layers the group bound proves never load WASM. */
export class LazyRunner {
  private runner: Promise<GlpkRunner> | undefined;
  private started: GlpkRunner | undefined;

  constructor(
    private readonly useWorker: boolean,
    private readonly warnings: string[],
    private readonly signal?: AbortSignal,
  ) {}

  async solve(jobs: GlpkJob[]): Promise<Result[]> {
    this.runner ??= createGlpkRunner(this.useWorker, this.signal).then((runner) => {
      this.started = runner;
      if (runner.fallbackReason) this.warnings.push(runner.fallbackReason);
      return runner;
    });
    return (await this.runner).solve(jobs);
  }

  get mode(): 'worker' | 'in-thread' | 'none' {
    return this.started?.mode ?? 'none';
  }

  async close(): Promise<void> {
    if (this.runner) await (await this.runner).close();
  }
}
