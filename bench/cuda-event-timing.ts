import type { CudaBackend } from '@fairkv/kernels-cuda';

/** The middle value (the upper one of an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Times `body` on the backend's stream with CUDA events: `warmups` unmeasured calls, then `count`
 * calls issued back to back with an event between consecutive ones; returns the median interval in
 * milliseconds. The host runs ahead, so each interval is the call's GPU time.
 */
export function medianEventMs(backend: CudaBackend, body: () => void, count: number, warmups = 3): number {
  const { native, nativeContext: context } = backend;
  const events = Array.from({ length: count + 1 }, () => native.eventCreate(context));
  for (let i = 0; i < warmups; i++) body();
  native.eventRecord(context, events[0]!);
  for (let i = 0; i < count; i++) {
    body();
    native.eventRecord(context, events[i + 1]!);
  }
  native.synchronizeNow(context);
  const times = events.slice(1).map((end, i) => native.eventElapsedMs(events[i]!, end));
  for (const event of events) native.eventDestroy(event);
  return median(times);
}
