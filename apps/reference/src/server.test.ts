import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReferenceServer } from './server.js';

const server = createReferenceServer({ version: '9.9.9' });
let base = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('reference server', () => {
  it('answers health checks', async () => {
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok', version: '9.9.9' });
  });

  it('lists presets with their sizes', async () => {
    const body = (await (await fetch(`${base}/api/presets`)).json()) as {
      models: { name: string; bf16: { weightBytes: number } }[];
    };
    const l8 = body.models.find((model) => model.name === 'llama-3.1-8b');
    expect(l8!.bf16.weightBytes / 2 / 1e9).toBeCloseTo(8.03, 2);
  });

  it('answers unknown routes and methods with OpenAI-shaped errors', async () => {
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { message: 'no route /nope', type: 'invalid_request_error' } });
    expect((await fetch(`${base}/healthz`, { method: 'DELETE' })).status).toBe(405);
  });
});
