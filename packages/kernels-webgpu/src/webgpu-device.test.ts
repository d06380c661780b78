import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { probeWebGpu, requestWebGpuDevice } from './webgpu-device.js';

// CI (.ci/run) installs SwiftShader and sets FAIRKV_REQUIRE_WEBGPU=1, so there the device must exist.
const probe = await probeWebGpu();
const required = process.env.FAIRKV_REQUIRE_WEBGPU === '1';

describe('WebGPU device', () => {
  it('reports a usable adapter or a reason naming what is missing', () => {
    if (required) expect(probe).toMatchObject({ available: true });
    if (!probe.available) expect(probe.reason).toMatch(/^WebGPU backend unavailable: /);
    else expect(probe.adapter.description.length + probe.adapter.vendor.length).toBeGreaterThan(0);
  });

  it.skipIf(!probe.available)(
    "runs a real compute shader (not Dawn's null backend, which reads back zeros), surviving a garbage collection mid-flight",
    async () => {
      // Regression: each probe used to create its own Dawn instance, and collecting one while another
      // instance's device had work in flight crashed the process (std::system_error or a mutex assertion).
      await probeWebGpu();
      await probeWebGpu();
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      const { device, dispose } = await requestWebGpuDevice();
      try {
        const n = 1000;
        const a = Float32Array.from({ length: n }, () => Math.random());
        const b = Float32Array.from({ length: n }, () => Math.random());
        const storage = (data: Float32Array) => {
          const buffer = device.createBuffer({
            size: data.byteLength,
            usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
          });
          device.queue.writeBuffer(buffer, 0, data);
          return buffer;
        };
        const bufferA = storage(a);
        const bufferB = storage(b);
        const out = storage(new Float32Array(n).fill(Number.NaN));
        const readback = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        const module = device.createShaderModule({
          code: `
          @group(0) @binding(0) var<storage, read> a: array<f32>;
          @group(0) @binding(1) var<storage, read> b: array<f32>;
          @group(0) @binding(2) var<storage, read_write> out: array<f32>;
          @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
            if (id.x < arrayLength(&out)) { out[id.x] = a[id.x] * 2.0 + b[id.x]; }
          }`,
        });
        const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
        const bindGroup = device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [bufferA, bufferB, out].map((buffer, binding) => ({ binding, resource: { buffer } })),
        });
        const encoder = device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(Math.ceil(n / 64));
        pass.end();
        encoder.copyBufferToBuffer(out, 0, readback, 0, n * 4);
        device.queue.submit([encoder.finish()]);
        gc();
        await readback.mapAsync(GPUMapMode.READ);
        const result = new Float32Array(readback.getMappedRange().slice(0));
        readback.unmap();
        for (let i = 0; i < n; i++) expect(result[i]).toBeCloseTo(a[i]! * 2 + b[i]!, 5);
      } finally {
        dispose();
      }
    },
  );
});
