/**
 * `@fairkv/runtime`: see README.md. Filled by its issue.
 *
 * @packageDocumentation
 */

export * from './model/index.js';
export * from './tokenizer/index.js';
export * from './engine/index.js';
