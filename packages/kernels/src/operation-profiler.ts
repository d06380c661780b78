import type { BackendProfile, OperationTime } from './backend.js';

/**
 * Host-timed operation profile for backends whose operations complete when they are called (the CPU
 * backend): {@link time} runs an operation and, while profiling is on, adds its wall time to its name.
 */
export class OperationProfiler {
  #totals: Map<string, OperationTime> | undefined;
  #first = 0;
  #last = 0;

  /** Whether operations are being timed. */
  get active(): boolean {
    return this.#totals !== undefined;
  }

  /** Starts (or restarts) a profile window. */
  start(): void {
    this.#totals = new Map();
    this.#first = Number.NaN;
    this.#last = Number.NaN;
  }

  /** Runs `body`, timing it under `name` while a window is open. */
  time<T>(name: string, body: () => T): T {
    const totals = this.#totals;
    if (totals === undefined) return body();
    const started = performance.now();
    try {
      return body();
    } finally {
      const ended = performance.now();
      if (Number.isNaN(this.#first)) this.#first = started;
      this.#last = ended;
      const total = totals.get(name) ?? { name, count: 0, milliseconds: 0 };
      total.count += 1;
      total.milliseconds += ended - started;
      totals.set(name, total);
    }
  }

  /** Closes the window and returns what it timed (an empty profile when none was open). */
  stop(): BackendProfile {
    const operations = [...(this.#totals?.values() ?? [])];
    const span = Number.isNaN(this.#first) || this.#totals === undefined ? 0 : this.#last - this.#first;
    this.#totals = undefined;
    return sortedProfile({ operations, busyMilliseconds: 0, spanMilliseconds: span });
  }
}

/** A profile with its operations sorted longest first and `busyMilliseconds` summed from them. */
export function sortedProfile(profile: BackendProfile): BackendProfile {
  const operations = [...profile.operations].sort(
    (a, b) => b.milliseconds - a.milliseconds || a.name.localeCompare(b.name),
  );
  return {
    operations,
    busyMilliseconds: operations.reduce((sum, operation) => sum + operation.milliseconds, 0),
    spanMilliseconds: profile.spanMilliseconds,
    ...(profile.calls !== undefined ? { calls: profile.calls } : {}),
  };
}
