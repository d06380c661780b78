import type { EngineMetrics } from './inference-engine.js';

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * Renders engine metrics in the Prometheus text exposition format (version 0.0.4): per-device KV bytes
 * held and pool capacity, allocated device memory, per-(device, layer) busy seconds, request counts,
 * token counters and decode throughput. Names carry the `fairkv_` prefix.
 */
export function metricsToPrometheus(metrics: EngineMetrics, labels: Record<string, string> = {}): string {
  const base = Object.entries(labels).map(([key, value]) => `${key}="${escapeLabel(value)}"`);
  const render = (extra: Record<string, string | number>) => {
    const all = [...base, ...Object.entries(extra).map(([key, value]) => `${key}="${escapeLabel(String(value))}"`)];
    return all.length > 0 ? `{${all.join(',')}}` : '';
  };
  const lines: string[] = [];
  const family = (
    name: string,
    type: 'gauge' | 'counter',
    help: string,
    samples: [Record<string, string | number>, number][],
  ) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [extra, value] of samples) lines.push(`${name}${render(extra)} ${Number.isFinite(value) ? value : 0}`);
  };
  family(
    'fairkv_device_kv_bytes',
    'gauge',
    'KV cache bytes held on the device (allocated pool blocks).',
    metrics.devices.map((d) => [{ device: d.device }, d.kvBytes]),
  );
  family(
    'fairkv_device_layer_kv_bytes',
    'gauge',
    'KV cache bytes held per device and layer.',
    metrics.devices.flatMap((d) =>
      d.layerKvBytes.map((bytes, layer): [Record<string, number>, number] => [{ device: d.device, layer }, bytes]),
    ),
  );
  family(
    'fairkv_device_kv_capacity_bytes',
    'gauge',
    'Bytes of the device KV pool.',
    metrics.devices.map((d) => [{ device: d.device }, d.kvCapacityBytes]),
  );
  family(
    'fairkv_device_allocated_bytes',
    'gauge',
    'Bytes of every live buffer on the device (weights, KV pool, scratch).',
    metrics.devices.map((d) => [{ device: d.device }, d.allocatedBytes]),
  );
  family(
    'fairkv_device_layer_busy_seconds_total',
    'counter',
    'Compute seconds per device and layer, all-reduce waits excluded.',
    metrics.devices.flatMap((d) =>
      d.layerBusySeconds.map((seconds, layer): [Record<string, number>, number] => [
        { device: d.device, layer },
        seconds,
      ]),
    ),
  );
  const graphed = metrics.devices.filter((d) => d.graphSteps !== undefined);
  if (graphed.length > 0) {
    family(
      'fairkv_device_graph_steps_total',
      'counter',
      'Decode steps per device run as recorded graph steps, by outcome: captured, replayed, fallback (replay left for eager operations), failed capture.',
      graphed.flatMap((d): [Record<string, string | number>, number][] => [
        [{ device: d.device, outcome: 'captured' }, d.graphSteps!.captures],
        [{ device: d.device, outcome: 'replayed' }, d.graphSteps!.replays],
        [{ device: d.device, outcome: 'fallback' }, d.graphSteps!.fallbacks],
        [{ device: d.device, outcome: 'failed_capture' }, d.graphSteps!.failedCaptures],
      ]),
    );
  }
  family('fairkv_requests', 'gauge', 'Requests by state.', [
    [{ state: 'waiting' }, metrics.requests.waiting],
    [{ state: 'active' }, metrics.requests.active],
  ]);
  family('fairkv_requests_completed_total', 'counter', 'Requests finished.', [[{}, metrics.requests.completed]]);
  family('fairkv_requests_refused_total', 'counter', 'Requests refused because they can never fit.', [
    [{}, metrics.requests.refused],
  ]);
  family('fairkv_generated_tokens_total', 'counter', 'Tokens generated.', [[{}, metrics.generatedTokens]]);
  family('fairkv_prompt_tokens_total', 'counter', 'Prompt tokens prefilled.', [[{}, metrics.promptTokens]]);
  family('fairkv_decode_steps_total', 'counter', 'Decode steps run.', [[{}, metrics.decodeSteps]]);
  family('fairkv_decode_seconds_total', 'counter', 'Wall seconds spent in decode steps.', [
    [{}, metrics.decodeSeconds],
  ]);
  family('fairkv_prefill_seconds_total', 'counter', 'Wall seconds spent in prefill and admission.', [
    [{}, metrics.prefillSeconds],
  ]);
  family('fairkv_decode_tokens_per_second', 'gauge', 'Decode throughput over the engine lifetime.', [
    [{}, metrics.decodeTokensPerSecond],
  ]);
  return `${lines.join('\n')}\n`;
}
