/**
 * `@fairkv/runtime`: see README.md. Filled by its issue.
 *
 * @packageDocumentation
 */

export * from './engine/index.js';
export * from './model/index.js';
export * from './tokenizer/index.js';
