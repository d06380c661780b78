/**
 * `@fairkv/kernels-webgpu`: WebGPU for fairkv — Dawn (npm `webgpu`) in Node, `navigator.gpu` in
 * browsers. Today: device acquisition and probing with a reason when unavailable. The WGSL kernels of
 * the Backend contract build on this.
 *
 * @packageDocumentation
 */
export * from './webgpu-device.js';
