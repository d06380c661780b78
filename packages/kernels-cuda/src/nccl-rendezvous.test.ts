import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { BackendError, ValidationError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { rendezvousNcclUniqueId } from './nccl-rendezvous.js';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe('NCCL unique-id rendezvous over TCP', () => {
  it('gives every rank the bytes rank 0 created, even when rank 0 starts last', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const created = new Uint8Array(randomBytes(128));
    const others = [1, 2, 3].map((rank) => rendezvousNcclUniqueId({ address, rank, size: 4, timeoutMs: 10_000 }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const root = rendezvousNcclUniqueId({ address, rank: 0, size: 4, timeoutMs: 10_000, createId: () => created });
    const ids = await Promise.all([root, ...others]);
    for (const id of ids) expect(id).toEqual(created);
  });

  it('times out naming the address and how many ranks came; refuses bad input by field', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const root = rendezvousNcclUniqueId({
      address,
      rank: 0,
      size: 3,
      timeoutMs: 500,
      createId: () => new Uint8Array(128),
    });
    const one = rendezvousNcclUniqueId({ address, rank: 1, size: 3, timeoutMs: 2000 });
    await expect(root).rejects.toThrow(BackendError);
    await expect(root).rejects.toThrow(new RegExp(`NCCL rendezvous on ${address}: 2 of 3 ranks arrived within 500 ms`));
    expect(await one).toHaveLength(128);
    const lonely = rendezvousNcclUniqueId({
      address: `127.0.0.1:${await freePort()}`,
      rank: 1,
      size: 2,
      timeoutMs: 300,
    });
    await expect(lonely).rejects.toThrow(/rank 1 got no id from rank 0 at 127\.0\.0\.1:\d+ within 300 ms/);
    await expect(rendezvousNcclUniqueId({ address: 'localhost', rank: 0, size: 2 })).rejects.toThrow(
      /address: expected host:port with a port in 1\.\.65535, got "localhost"/,
    );
    await expect(rendezvousNcclUniqueId({ address: 'h:1', rank: 2, size: 2 })).rejects.toThrow(ValidationError);
    await expect(
      rendezvousNcclUniqueId({ address: 'h:1', rank: 0, size: 1, createId: () => new Uint8Array(5) }),
    ).rejects.toThrow(/createId returned 5 bytes, expected 128/);
  });
});
