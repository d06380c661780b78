import { describe, expect, it } from 'vitest';
import type { EngineMetrics } from './inference-engine.js';
import { metricsToPrometheus } from './prometheus.js';

const metrics: EngineMetrics = {
  devices: [
    {
      device: 0,
      kvBytes: 2048,
      layerKvBytes: [1024, 1024],
      kvCapacityBytes: 8192,
      allocatedBytes: 100000,
      layerBusySeconds: [0.5, 0.25],
      graphSteps: { captures: 2, replays: 37, fallbacks: 1, failedCaptures: 0, graphs: 1 },
      shard: { kvHeadsPerLayer: [1, 2], ffnRows: 86 },
    },
    {
      device: 1,
      kvBytes: 1024,
      layerKvBytes: [0, 1024],
      kvCapacityBytes: 8192,
      allocatedBytes: 90000,
      layerBusySeconds: [0.1, 0.2],
      shard: { kvHeadsPerLayer: [3, 2], ffnRows: 86 },
    },
  ],
  requests: { waiting: 1, active: 2, completed: 5, refused: 1 },
  generatedTokens: 120,
  promptTokens: 300,
  decodeSteps: 40,
  decodeTokensPerSecond: 37.5,
  decodeSeconds: 3.2,
  prefillSeconds: 0.4,
};

describe('metricsToPrometheus', () => {
  it('renders every family with HELP, TYPE and labelled samples', () => {
    const text = metricsToPrometheus(metrics, { model: 'stories"260k' });
    expect(text).toContain(
      '# TYPE fairkv_device_kv_bytes gauge\nfairkv_device_kv_bytes{model="stories\\"260k",device="0"} 2048\nfairkv_device_kv_bytes{model="stories\\"260k",device="1"} 1024',
    );
    expect(text).toContain('fairkv_device_layer_busy_seconds_total{model="stories\\"260k",device="1",layer="1"} 0.2');
    expect(text).toContain('fairkv_device_layer_kv_bytes{model="stories\\"260k",device="1",layer="0"} 0');
    expect(text).toContain('fairkv_requests{model="stories\\"260k",state="waiting"} 1');
    expect(text).toContain('fairkv_decode_tokens_per_second{model="stories\\"260k"} 37.5');
    // graph steps only for the devices that run them
    expect(text).toContain('fairkv_device_graph_steps_total{model="stories\\"260k",device="0",outcome="replayed"} 37');
    expect(text).not.toContain('fairkv_device_graph_steps_total{model="stories\\"260k",device="1"');
    expect(metricsToPrometheus({ ...metrics, devices: [metrics.devices[1]!] })).not.toContain('graph_steps');
    expect(text.endsWith('\n')).toBe(true);
    // every sample line is `name{labels} number`
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#')))
      expect(line).toMatch(/^fairkv_[a-z_]+(\{[^}]*\})? -?[0-9.e+-]+$/);
  });
});
