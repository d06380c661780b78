/**
 * Runs prompts through an inference engine and records what the CLI reports: per-device peak KV
 * memory (sampled from the engine's metrics while requests are live, since finished requests free
 * their KV), per-device busy time, and throughput.
 *
 * @packageDocumentation
 */
import type {
  DeviceStats,
  EngineMetrics,
  GenerateOptions,
  GenerationChunk,
  GenerationResult,
  InferenceEngine,
} from '@fairkv/runtime';

/** Per-device figures of one run. */
export interface DeviceFigures {
  device: number;
  /** Largest KV bytes the device held at once. */
  kvBytesPeak: number;
  /** Bytes of its KV pool. */
  kvCapacityBytes: number;
  /** Every live backend buffer at the end (weights, pool, scratch). */
  allocatedBytes: number;
  /** Compute seconds summed over layers (all-reduce waits excluded). */
  busySeconds: number;
  /** Kv heads hosted per layer (copies included). */
  kvHeadsPerLayer: number[];
  /** Decode steps as graph steps on this device, cumulative over the engine (absent where they are off). */
  graphSteps?: DeviceStats['graphSteps'];
}

/** What one run measured. */
export interface WorkloadFigures {
  results: GenerationResult[];
  devices: DeviceFigures[];
  /** Generated tokens over the run's wall time (prefill included). */
  tokensPerSecond: number;
  /** Generated tokens per second of decode steps (the engine's figure). */
  decodeTokensPerSecond: number;
  generatedTokens: number;
  wallSeconds: number;
  prefillSeconds: number;
  decodeSeconds: number;
}

/** Options of {@link runWorkload}. */
export interface RunWorkloadOptions {
  engine: InferenceEngine;
  prompts: readonly string[];
  generate: GenerateOptions;
  /** Called with every chunk of request `streamIndex` (default 0), e.g. to print its text as it comes. */
  onChunk?: (chunk: GenerationChunk) => void;
  streamIndex?: number;
  /** Called as requests finish. */
  onRequestDone?: (done: number, total: number) => void;
}

/**
 * Submits every prompt at once (the engine batches up to its `maxBatch` and queues the rest), streams
 * one of them, and samples device KV memory until all are done. Throughput and seconds count this
 * workload only (the engine's counters are read before and after), so an earlier warm-up is left out.
 * @throws the first request's error (a refused request: CapacityError).
 */
export async function runWorkload(options: RunWorkloadOptions): Promise<WorkloadFigures> {
  const { engine, prompts } = options;
  const before = await engine.metrics();
  const started = performance.now();
  const peak = new Array<number>(engine.deviceCount).fill(0);
  let finished = false;
  const sample = (metrics: EngineMetrics) => {
    metrics.devices.forEach((device, index) => {
      peak[index] = Math.max(peak[index]!, device.kvBytes);
    });
  };
  const sampler = (async () => {
    while (!finished) {
      sample(await engine.metrics());
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  let done = 0;
  const streams = prompts.map((prompt) => engine.generate(prompt, options.generate));
  const results = streams.map((stream) =>
    stream.result.then((result) => {
      options.onRequestDone?.(++done, prompts.length);
      return result;
    }),
  );
  try {
    // sampling on each streamed token as well: with in-thread devices the timer above may not get a turn
    const streamed = streams[options.streamIndex ?? 0];
    if (streamed) {
      for await (const chunk of streamed) {
        options.onChunk?.(chunk);
        sample(await engine.metrics());
      }
    }
    const all = await Promise.all(results);
    const wallSeconds = (performance.now() - started) / 1000;
    finished = true;
    await sampler;
    const metrics = await engine.metrics();
    sample(metrics);
    const generatedTokens = all.reduce((sum, result) => sum + result.tokenIds.length, 0);
    // this workload's share of the engine's cumulative counters
    const decodeSeconds = metrics.decodeSeconds - before.decodeSeconds;
    const decodeTokens =
      metrics.decodeTokensPerSecond * metrics.decodeSeconds - before.decodeTokensPerSecond * before.decodeSeconds;
    return {
      results: all,
      devices: metrics.devices.map((device, index) => ({
        device: device.device,
        kvBytesPeak: peak[index]!,
        kvCapacityBytes: device.kvCapacityBytes,
        allocatedBytes: device.allocatedBytes,
        busySeconds: device.layerBusySeconds.reduce((sum, value) => sum + value, 0),
        kvHeadsPerLayer: device.shard.kvHeadsPerLayer,
        ...(device.graphSteps ? { graphSteps: device.graphSteps } : {}),
      })),
      tokensPerSecond: wallSeconds > 0 ? generatedTokens / wallSeconds : 0,
      decodeTokensPerSecond: decodeSeconds > 0 ? decodeTokens / decodeSeconds : 0,
      generatedTokens,
      wallSeconds,
      prefillSeconds: metrics.prefillSeconds - before.prefillSeconds,
      decodeSeconds,
    };
  } finally {
    finished = true;
    await sampler.catch(() => {});
  }
}
