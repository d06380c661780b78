import { randomBytes } from 'node:crypto';
import { connect, createServer } from 'node:net';
import { BackendError, ValidationError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import { rendezvousNcclGroup, rendezvousNcclUniqueId } from './nccl-rendezvous.js';

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

/** The rendezvous's hello for `rank`, as a rank's process sends it. */
function hello(rank: number): Buffer {
  const bytes = Buffer.alloc(12);
  bytes.write('FKVNCCL1');
  bytes.writeUInt32BE(rank, 8);
  return bytes;
}

/** Resolves with the reason once `group` reports a lost peer, or with undefined after `ms`. */
function lostWithin(group: { onPeerLost(listener: (reason: string) => void): void }, ms: number) {
  return new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    group.onPeerLost((reason) => {
      clearTimeout(timer);
      resolve(reason);
    });
  });
}

describe('NCCL group rendezvous: the connections as a watch over the ranks', () => {
  it('a rank whose process is gone before it left is reported to every other rank; leaving is not', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const [host, port] = [address.split(':')[0]!, Number(address.split(':')[1])];
    const created = new Uint8Array(randomBytes(128));
    const root = rendezvousNcclGroup({ address, rank: 0, size: 3, timeoutMs: 10_000, createId: () => created });
    const one = rendezvousNcclGroup({ address, rank: 1, size: 3, timeoutMs: 10_000 });
    // rank 2's "process": fetches the id by the protocol, then vanishes without saying goodbye
    const two = connect({ port, host });
    await new Promise((resolve) => two.once('connect', resolve));
    two.write(hello(2));
    await new Promise((resolve) => two.once('data', resolve));
    const [zero, first] = await Promise.all([root, one]);
    expect(zero.uniqueId).toEqual(created);
    expect(first.uniqueId).toEqual(created);
    const lost = [lostWithin(zero, 5_000), lostWithin(first, 5_000)];
    two.destroy();
    expect(await lost[0]).toMatch(/the connection to rank 2 closed before it left/);
    expect(await lost[1]).toMatch(/rank 0 reports that a rank of the group is gone/);
    // a listener added afterwards hears it at once
    expect(await lostWithin(zero, 10)).toMatch(/rank 2/);
    zero.leave();
    first.leave();
  });

  it('ranks that all leave report nothing; a rank whose connection to rank 0 drops counts rank 0 as gone', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const ranks = await Promise.all(
      [0, 1, 2].map((rank) =>
        rendezvousNcclGroup({ address, rank, size: 3, timeoutMs: 10_000, createId: () => new Uint8Array(128) }),
      ),
    );
    const quiet = ranks.map((group) => lostWithin(group, 400));
    ranks[1]!.leave();
    ranks[2]!.leave();
    ranks[0]!.leave();
    for (const reason of await Promise.all(quiet)) expect(reason).toBeUndefined();

    // rank 0's "process": serves the id by the protocol, then vanishes
    const port = await freePort();
    const server = createServer((socket) => {
      socket.once('data', () => {
        socket.write(Buffer.alloc(128, 5), () => setTimeout(() => socket.destroy(), 50));
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      const orphan = await rendezvousNcclGroup({ address: `127.0.0.1:${port}`, rank: 1, size: 2, timeoutMs: 5_000 });
      expect(orphan.uniqueId).toEqual(new Uint8Array(128).fill(5));
      expect(await lostWithin(orphan, 5_000)).toMatch(/the connection to rank 0 closed before it left/);
    } finally {
      server.close();
    }
  });
});
