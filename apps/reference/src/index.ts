/**
 * The fairkv reference app: an OpenAI-style HTTP API and a live dashboard on top of `@fairkv/runtime`.
 *
 * @packageDocumentation
 */
export * from './server.js';
