/**
 * `fairkv`: the command-line front door (demo, plan, profile, generate, bench, inspect). The library
 * entry exposes the command tree and runner for tests and documentation generation.
 *
 * @packageDocumentation
 */

export { renderCliDocs } from './cli-docs.js';
export { EXIT_INPUT, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, exitCodeOf, InputError, UsageError } from './cli-error.js';
export { type CommandExample, examplesOf } from './command-help.js';
export { DEFAULT_MODEL_NAME, defaultModelFolder, ensureDefaultModel } from './default-model.js';
export { createProgram } from './program.js';
export { runCli } from './run-cli.js';
export { version } from './version.js';
