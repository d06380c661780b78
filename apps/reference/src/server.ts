import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { CLUSTER_PRESETS, getModelPreset, MODEL_PRESET_NAMES, modelSizes } from '@fairkv/core';

/** Options of {@link createReferenceServer}. */
export interface ReferenceServerOptions {
  /** Version string reported by `/healthz`. */
  version?: string;
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

function route(request: IncomingMessage, response: ServerResponse, options: ReferenceServerOptions): void {
  const url = new URL(request.url ?? '/', 'http://localhost');
  if (request.method !== 'GET') {
    sendJson(response, 405, {
      error: { message: `method ${request.method} not allowed on ${url.pathname}`, type: 'invalid_request_error' },
    });
    return;
  }
  if (url.pathname === '/healthz') {
    sendJson(response, 200, { status: 'ok', version: options.version ?? '0.1.0' });
    return;
  }
  if (url.pathname === '/api/presets') {
    const models = MODEL_PRESET_NAMES.map((name) => {
      const config = getModelPreset(name);
      const sizes = modelSizes(config, 'bf16');
      return { name, config, bf16: { weightBytes: sizes.totalWeightBytes, kvBytesPerToken: sizes.kvBytesPerToken } };
    });
    sendJson(response, 200, { models, clusters: Object.values(CLUSTER_PRESETS) });
    return;
  }
  sendJson(response, 404, { error: { message: `no route ${url.pathname}`, type: 'invalid_request_error' } });
}

/**
 * The reference app's HTTP server. Errors follow the OpenAI error shape `{ error: { message, type } }`.
 * Routes: `GET /healthz`, `GET /api/presets` (model and cluster presets with bf16 sizes).
 */
export function createReferenceServer(options: ReferenceServerOptions = {}): Server {
  return createServer((request, response) => route(request, response, options));
}
