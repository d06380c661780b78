/**
 * `@fairkv/core`: the contract every fairkv package implements or composes. Model configs and
 * presets, head-load profiles (with the DuoAttention builder), cluster specs, placement plans
 * (versioned JSON with a validator), dtypes and the error hierarchy. Depends on nothing of ours.
 *
 * @packageDocumentation
 */

export * from './cluster.js';
export * from './dtype.js';
export * from './duo-attention.js';
export * from './errors.js';
export * from './head-load-profile.js';
export { describeValue, jsonPath } from './json-path.js';
export * from './kernel-names.js';
export * from './model-config.js';
export * from './model-presets.js';
export * from './model-sizes.js';
export * from './plan.js';
export { seededRandom } from './seeded-random.js';
