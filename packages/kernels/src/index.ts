/**
 * `@fairkv/kernels`: see README.md. Filled by its issue.
 *
 * @packageDocumentation
 */
export {};
