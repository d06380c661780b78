/**
 * `@fairkv/kernels`: the Backend contract every fairkv compute backend implements (buffers, a queue,
 * the kernels of a Llama decoder step), the paged KV cache layout, and the CPU reference backend.
 * The conformance suite is at `@fairkv/kernels/testing`.
 *
 * @packageDocumentation
 */
export * from './backend.js';
export * from './kernel-args.js';
export * from './kv-layout.js';
export * from './pcg-hash.js';
export * from './rope-table.js';
