/**
 * `@fairkv/kernels/testing`: the backend conformance suite (for vitest) and the float64 references
 * it checks against. A backend's test file calls `describeBackendConformance(createBackend,
 * capabilities)`.
 *
 * @packageDocumentation
 */

export { CONFORMANCE_CASES } from './cases/index.js';
export { describeBackendConformance, skipReason } from './conformance.js';
export type { ConformanceCase, SizeSpec } from './conformance-case.js';
export { CaseContext, ConformanceFailure, PADDING, POISON_I32 } from './harness.js';
export { type PagedLayout, randomPagedLayout, TABLE_GARBAGE, tokenOffset } from './paged-layout.js';
export { createRandom, freshSeed, type Random } from './random.js';
export * from './reference/attention.js';
export * from './reference/dense.js';
export * from './reference/sampling.js';
export { CONFORMANCE_TOLERANCES, type Comparison, compareOutputs } from './tolerance.js';
