/**
 * `@fairkv/placement`: see README.md. Filled by its issue.
 *
 * @packageDocumentation
 */
export {};
