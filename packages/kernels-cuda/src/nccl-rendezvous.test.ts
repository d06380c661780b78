import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { BackendError, ValidationError } from '@fairkv/core';
import { describe, expect, it } from 'vitest';
import type { NcclRankCommunicator } from './nccl-rank-communicators.js';
import { rendezvousNcclGroup, rendezvousNcclUniqueId, watchedRank } from './nccl-rendezvous.js';

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

/** Rank 0 of a group of `size` on `address`, serving a zeroed id. */
function rootRank(address: string, size: number) {
  return rendezvousNcclGroup({ address, rank: 0, size, timeoutMs: 10_000, createId: () => new Uint8Array(128) });
}

/** A rank's "process" speaking the protocol by hand: says hello, receives the id; the connection stays open. */
async function handRank(address: string, rank: number): Promise<Socket> {
  const [host, port] = [address.split(':')[0]!, Number(address.split(':')[1])];
  const socket = connect({ port, host });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(hello(rank));
  await new Promise((resolve) => socket.once('data', resolve));
  return socket;
}

/** An abort with `reason`, as a rank sends it (kind, u16 length, UTF-8). */
function abortBytes(reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8');
  return Buffer.concat([Buffer.of(0x41, 0, text.length), text]);
}

/** Every rank of a group of `size` formed by rendezvousNcclGroup on a fresh local address. */
async function formGroup(size: number) {
  const address = `127.0.0.1:${await freePort()}`;
  return Promise.all(
    Array.from({ length: size }, (_, rank) =>
      rendezvousNcclGroup({ address, rank, size, timeoutMs: 10_000, createId: () => new Uint8Array(128) }),
    ),
  );
}

describe('NCCL group rendezvous: the connections as a watch over the ranks', () => {
  it('a rank whose process is gone before it left is reported to every other rank; leaving is not', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const created = new Uint8Array(randomBytes(128));
    const root = rendezvousNcclGroup({ address, rank: 0, size: 3, timeoutMs: 10_000, createId: () => created });
    const one = rendezvousNcclGroup({ address, rank: 1, size: 3, timeoutMs: 10_000 });
    // rank 2's "process": fetches the id by the protocol, then vanishes without saying goodbye
    const two = await handRank(address, 2);
    const [zero, first] = await Promise.all([root, one]);
    expect(zero.uniqueId).toEqual(created);
    expect(first.uniqueId).toEqual(created);
    const lost = [lostWithin(zero, 5_000), lostWithin(first, 5_000)];
    two.destroy();
    expect(await lost[0]).toMatch(/the connection to rank 2 closed before it left/);
    expect(await lost[1]).toMatch(/rank 0 reports: the connection to rank 2 closed before it left/);
    // a listener added afterwards hears it at once
    expect(await lostWithin(zero, 10)).toMatch(/rank 2/);
    zero.leave();
    first.leave();
  });

  it('ranks that all leave report nothing; a rank whose connection to rank 0 drops counts rank 0 as gone', async () => {
    const ranks = await formGroup(3);
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

  it('a rank that aborts is reported to every other rank with its reason, and not to itself', async () => {
    const ranks = await formGroup(3);
    const heard = ranks.map((group) => lostWithin(group, 5_000));
    ranks[2]!.abort('device 2 failed: an illegal memory access');
    expect(await heard[0]).toBe('rank 2 aborted the group: device 2 failed: an illegal memory access');
    expect(await heard[1]).toBe('rank 0 reports: rank 2 aborted the group: device 2 failed: an illegal memory access');
    expect(await Promise.race([heard[2], new Promise((resolve) => setTimeout(() => resolve('quiet'), 300))])).toBe(
      'quiet',
    );
    for (const group of ranks) group.leave();

    // rank 0 aborting reaches every rank directly
    const again = await formGroup(3);
    const told = [lostWithin(again[1]!, 400), lostWithin(again[2]!, 5_000)];
    again[1]!.leave(); // a rank that left hears nothing more
    again[0]!.abort('x'.repeat(5000)); // reasons are cut at 1 KiB
    expect(await told[0]).toBeUndefined();
    expect(await told[1]).toBe(`rank 0 aborted the group: ${'x'.repeat(1024)}`);
    again[2]!.leave();
  });

  it('keeps an abort sent before the group formed (the other ranks still arriving) for the watch', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const root = rootRank(address, 3);
    // rank 2 takes the id, aborts at once (its init failed) and goes, before rank 1 has even arrived
    const two = await handRank(address, 2);
    two.end(abortBytes('its ncclCommInitRank failed: out of memory'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const one = await rendezvousNcclGroup({ address, rank: 1, size: 3, timeoutMs: 10_000 });
    const zero = await root;
    expect(await lostWithin(zero, 5_000)).toBe('rank 2 aborted the group: its ncclCommInitRank failed: out of memory');
    expect(await lostWithin(one, 5_000)).toBe(
      'rank 0 reports: rank 2 aborted the group: its ncclCommInitRank failed: out of memory',
    );
    zero.leave();
    one.leave();
  });

  it('reads an abort that arrives in pieces; does nothing after the rank left', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const root = rootRank(address, 2);
    const one = await handRank(address, 1);
    const zero = await root;
    const heard = lostWithin(zero, 5_000);
    const frame = abortBytes('GPU 1 fell off the bus');
    one.write(frame.subarray(0, 2));
    await new Promise((resolve) => setTimeout(resolve, 50));
    one.write(frame.subarray(2, 9));
    await new Promise((resolve) => setTimeout(resolve, 50));
    one.end(frame.subarray(9));
    expect(await heard).toBe('rank 1 aborted the group: GPU 1 fell off the bus');
    zero.leave();
    zero.abort('late'); // after leave: nothing is sent, nothing throws
  });
});

/** A rank communicator whose all-reduces fail with `fail()`'s error, if any, and that counts its aborts. */
function fakeRank(rank: number, fail: () => Error | undefined) {
  const aborts: number[] = [];
  const reduce = async () => {
    const error = fail();
    if (error) throw error;
  };
  const communicator: NcclRankCommunicator = {
    rank,
    size: 2,
    allReduceSum: reduce,
    allReduceDeviceSum: reduce,
    dispose() {},
  };
  return { communicator, aborts, abortLocal: async () => aborts.push(Date.now()) };
}

async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  return condition();
}

describe('a rank communicator tied to the watch (joinNcclRankOverTcp)', () => {
  async function pair() {
    const groups = await formGroup(2);
    const errors: (Error | undefined)[] = [undefined, undefined];
    const fakes = [0, 1].map((rank) => fakeRank(rank, () => errors[rank]));
    const ranks = fakes.map((fake, rank) => watchedRank(groups[rank]!, fake.communicator, fake.abortLocal));
    return { ranks, fakes, errors };
  }

  it('a rank whose all-reduce fails aborts the group: the other rank is aborted, and its error says why', async () => {
    const { ranks, fakes, errors } = await pair();
    errors[1] = new ValidationError('elementCount: expected 0..4, got 9', []);
    await expect(ranks[1]!.allReduceDeviceSum({} as never, 9)).rejects.toThrow(ValidationError);
    expect(await until(() => fakes[0]!.aborts.length > 0, 300)).toBe(false); // bad input is not a failure

    errors[1] = new BackendError('NCCL all-reduce on rank 1 failed: an illegal memory access was encountered');
    await expect(ranks[1]!.allReduceSum(new Float32Array(4))).rejects.toThrow(/an illegal memory access/);
    expect(fakes[1]!.aborts).toHaveLength(1);
    expect(await until(() => fakes[0]!.aborts.length > 0, 5_000)).toBe(true);
    errors[0] = new BackendError('NCCL all-reduce on rank 0 failed: ncclAllReduce: the NCCL group was aborted');
    await expect(ranks[0]!.allReduceSum(new Float32Array(4))).rejects.toThrow(
      'NCCL all-reduce on rank 0 failed: ncclAllReduce: the NCCL group was aborted; rank 1 aborted the group: ' +
        'its all-reduce failed: NCCL all-reduce on rank 1 failed: an illegal memory access was encountered',
    );
    for (const rank of ranks) rank.dispose();
  });

  it('abort(reason) aborts this rank and the others; later failures here name it', async () => {
    const { ranks, fakes, errors } = await pair();
    await ranks[0]!.abort!('device 0 failed');
    expect(fakes[0]!.aborts).toHaveLength(1);
    expect(await until(() => fakes[1]!.aborts.length > 0, 5_000)).toBe(true);
    errors[0] = new BackendError('ncclAllReduce: the NCCL group was aborted');
    await expect(ranks[0]!.allReduceSum(new Float32Array(1))).rejects.toThrow(
      'ncclAllReduce: the NCCL group was aborted; this rank aborted the group: device 0 failed',
    );
    errors[1] = new BackendError('ncclAllReduce: the NCCL group was aborted');
    await expect(ranks[1]!.allReduceDeviceSum({} as never, 1)).rejects.toThrow(
      'ncclAllReduce: the NCCL group was aborted; rank 0 aborted the group: device 0 failed',
    );
    for (const rank of ranks) rank.dispose();
  });
});
