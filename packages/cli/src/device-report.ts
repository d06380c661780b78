/**
 * The per-device table `generate`, `bench` and `demo` print: hosted kv heads, peak KV memory against
 * the pool, busy time.
 *
 * @packageDocumentation
 */
import type { DeviceFigures } from './run-workload.js';
import { formatBytes, formatSeconds, renderTable } from './terminal.js';

/** A text bar `#####.....` of `value / max` over `width` characters. */
export function textBar(value: number, max: number, width = 20): string {
  const filled = max > 0 ? Math.round((value / max) * width) : 0;
  return `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
}

/**
 * One row per device: kv heads hosted (copies included), peak KV bytes with a bar scaled to `scaleBytes`
 * (default: the largest peak), busy seconds.
 */
export function deviceTable(devices: readonly DeviceFigures[], scaleBytes?: number): string {
  const max = scaleBytes ?? Math.max(...devices.map((device) => device.kvBytesPeak));
  const rows = devices.map((device) => [
    String(device.device),
    String(device.kvHeadsPerLayer.reduce((sum, value) => sum + value, 0)),
    formatBytes(device.kvBytesPeak),
    textBar(device.kvBytesPeak, max),
    formatSeconds(device.busySeconds),
  ]);
  return renderTable(['device', 'kv heads', 'KV peak', '', 'busy'], rows, ['left', 'right', 'right', 'left', 'right']);
}

/** max / mean of the devices' peak KV bytes (1 = balanced). */
export function kvBalance(devices: readonly DeviceFigures[]): number {
  const peaks = devices.map((device) => device.kvBytesPeak);
  const mean = peaks.reduce((sum, value) => sum + value, 0) / Math.max(1, peaks.length);
  return mean > 0 ? Math.max(...peaks) / mean : 1;
}
