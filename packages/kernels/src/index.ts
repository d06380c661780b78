/**
 * `@fairkv/kernels`: the Backend contract every fairkv compute backend implements (buffers, a queue,
 * the kernels of a Llama decoder step), the paged KV cache layout, and the CPU reference backend.
 * The conformance suite is at `@fairkv/kernels/testing`.
 *
 * @packageDocumentation
 */
export * from './backend.js';
export * from './buffer-checks.js';
export * from './buffer-range.js';
export { CpuBackend, type CpuBackendOptions, createCpuBackend } from './cpu/cpu-backend.js';
export type {
  AnyCpuKernel,
  CpuKernel,
  CpuKernelContext,
  CpuParallelRunner,
  ParallelFunctionName,
} from './cpu/cpu-kernel.js';
export { CPU_KERNELS } from './cpu/kernels/index.js';
export type { StoredArray } from './cpu/stored-array.js';
export * from './graph-steps.js';
export * from './half-precision.js';
export * from './kernel-args.js';
export * from './kv-block-allocator.js';
export * from './kv-layout.js';
export * from './operation-profiler.js';
export * from './pcg-hash.js';
export * from './rope-table.js';
export * from './validate-kernel-args.js';
