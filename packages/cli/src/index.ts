/**
 * `fairkv`: the command-line front door (plan, profile, generate, bench, inspect). The library entry
 * exposes the command tree for tests and documentation generation.
 *
 * @packageDocumentation
 */
export { createProgram } from './program.js';
export { version } from './version.js';
