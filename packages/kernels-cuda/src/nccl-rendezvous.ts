/**
 * The TCP rendezvous that lets separate processes (on one node or several) form one NCCL group: rank 0
 * creates the 128-byte `ncclUniqueId` and serves it on a TCP address; every other rank connects, says
 * which rank it is, and receives the id; then all ranks call `ncclCommInitRank` (see
 * {@link joinNcclRankOverTcp}). Only the id travels here: NCCL is the distributed engine. The
 * connections can stay open as a watch over the ranks' processes ({@link rendezvousNcclGroup}): a rank
 * whose process goes away without leaving, or that aborts (its device failed), makes every other rank
 * abort its NCCL communicator, so no rank waits in a collective for a rank that will never join it.
 *
 * @packageDocumentation
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { BackendError, ValidationError } from '@fairkv/core';
import type { CudaBackend } from './cuda-backend.js';
import { abortNcclRanks, createNcclUniqueId, joinNcclRank, NCCL_UNIQUE_ID_BYTES, validateRank } from './nccl-rank.js';
import type { NcclRankCommunicator } from './nccl-rank-communicators.js';

const HELLO = Buffer.from('FKVNCCL1');
/** After the id, on a connection kept open: this side leaves normally (what follows is not a loss). */
const BYE = 0x42;
/** From rank 0, then a reason (u16 length + UTF-8): another rank is gone or aborted. */
const LOST = 0x4c;
/** From the rank at this connection's other end, then a reason: it aborts the group. */
const ABORT = 0x41;
/** Longest reason sent, in bytes. */
const REASON_BYTES = 1024;

function frame(kind: number, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, REASON_BYTES);
  const header = Buffer.alloc(3);
  header[0] = kind;
  header.writeUInt16BE(text.length, 1);
  return Buffer.concat([header, text]);
}

/** Options of {@link rendezvousNcclUniqueId}. */
export interface NcclRendezvousOptions {
  /** `host:port` where rank 0 listens (e.g. `10.0.0.1:29500`); every rank passes the same address. */
  address: string;
  /** This process's rank, `0 <= rank < size`. */
  rank: number;
  /** Ranks in the group. */
  size: number;
  /** Give up after this long (default 60 s): rank 0 waiting for the others, the others for rank 0. */
  timeoutMs?: number;
  /** Creates the id on rank 0 (default {@link createNcclUniqueId}, which needs NCCL). */
  createId?: () => Uint8Array;
}

function parseAddress(address: string): { host: string; port: number } {
  const match = /^(.+):(\d+)$/.exec(typeof address === 'string' ? address : '');
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ValidationError(`address: expected host:port with a port in 1..65535, got ${JSON.stringify(address)}`, [
      { path: '$.address', message: 'expected host:port' },
    ]);
  }
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function validate(options: NcclRendezvousOptions): { host: string; port: number; timeoutMs: number } {
  validateRank(options.rank, options.size);
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (!(timeoutMs > 0)) {
    throw new ValidationError(`timeoutMs: expected a positive number, got ${timeoutMs}`, [
      { path: '$.timeoutMs', message: 'expected > 0' },
    ]);
  }
  return { ...parseAddress(options.address), timeoutMs };
}

/**
 * Reads exactly `bytes` bytes from a socket; bytes that came after them go back to the socket's stream,
 * which is left paused, so that nothing that follows is lost before the next reader listens (it resumes it).
 */
function readExactly(socket: Socket, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= bytes) {
        cleanup();
        socket.pause();
        const all = Buffer.concat(chunks);
        if (all.length > bytes) socket.unshift(all.subarray(bytes));
        resolve(all.subarray(0, bytes));
      }
    };
    const onEnd = () => {
      cleanup();
      reject(new Error(`connection closed after ${length} of ${bytes} bytes`));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
  });
}

/** Rank 0's side: serves the id to every other rank; with `keepOpen`, resolves with their connections. */
function serve(
  host: string,
  port: number,
  size: number,
  id: Uint8Array,
  timeoutMs: number,
  keepOpen: boolean,
): Promise<Map<number, Socket>> {
  return new Promise((resolve, reject) => {
    const served = new Map<number, Socket>();
    let server: Server | undefined;
    const finish = (error?: Error) => {
      clearTimeout(timer);
      server?.close();
      if (error) {
        for (const socket of served.values()) socket.destroy();
        reject(error);
      } else resolve(served);
    };
    const timer = setTimeout(
      () =>
        finish(
          new BackendError(
            `NCCL rendezvous on ${host}:${port}: ${served.size + 1} of ${size} ranks arrived within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    server = createServer((socket) => {
      socket.on('error', () => socket.destroy());
      readExactly(socket, HELLO.length + 4)
        .then((hello) => {
          const rank = hello.readUInt32BE(HELLO.length);
          if (!hello.subarray(0, HELLO.length).equals(HELLO) || rank < 1 || rank >= size || served.has(rank)) {
            socket.destroy();
            return;
          }
          served.set(rank, socket);
          const done = () => {
            if (served.size === size - 1) finish();
          };
          if (keepOpen) socket.write(Buffer.from(id), done);
          else socket.end(Buffer.from(id), done);
        })
        .catch(() => socket.destroy());
    });
    server.on('error', (error) =>
      finish(
        new BackendError(`NCCL rendezvous: rank 0 cannot listen on ${host}:${port}: ${error.message}`, {
          cause: error,
        }),
      ),
    );
    server.listen(port, host);
  });
}

/** A rank's side: fetches the id from rank 0; with `keepOpen`, keeps the connection (returned). */
async function fetchId(
  host: string,
  port: number,
  rank: number,
  timeoutMs: number,
  keepOpen: boolean,
): Promise<{ id: Uint8Array; socket?: Socket }> {
  const deadline = Date.now() + timeoutMs;
  let lastError: Error | undefined;
  while (Date.now() < deadline) {
    try {
      const socket = connect({ host, port });
      let kept = false;
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('connect', resolve);
          socket.once('error', reject);
        });
        const hello = Buffer.alloc(HELLO.length + 4);
        HELLO.copy(hello);
        hello.writeUInt32BE(rank, HELLO.length);
        socket.write(hello);
        const id = new Uint8Array(await readExactly(socket, NCCL_UNIQUE_ID_BYTES));
        kept = keepOpen;
        return kept ? { id, socket } : { id };
      } finally {
        if (!kept) socket.destroy();
      }
    } catch (error) {
      // rank 0 not listening yet (or it refused us): retry until the deadline
      lastError = error as Error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new BackendError(
    `NCCL rendezvous: rank ${rank} got no id from rank 0 at ${host}:${port} within ${timeoutMs} ms (${lastError?.message ?? 'no answer'})`,
  );
}

/**
 * Agrees on one NCCL unique id between `size` processes: rank 0 creates it and serves it at `address`
 * until every other rank has fetched it; the others connect (retrying until rank 0 listens) and
 * receive it. Resolves with the same 128 bytes on every rank.
 * @throws ValidationError for a bad address, rank or size; BackendError on timeout.
 */
export async function rendezvousNcclUniqueId(options: NcclRendezvousOptions): Promise<Uint8Array> {
  return (await rendezvous(options, false)).id;
}

async function rendezvous(
  options: NcclRendezvousOptions,
  keepOpen: boolean,
): Promise<{ id: Uint8Array; sockets: Map<number, Socket> }> {
  const { host, port, timeoutMs } = validate(options);
  if (options.rank !== 0) {
    const { id, socket } = await fetchId(host, port, options.rank, timeoutMs, keepOpen);
    return { id, sockets: new Map(socket ? [[0, socket]] : []) };
  }
  const id = (options.createId ?? createNcclUniqueId)();
  if (!(id instanceof Uint8Array) || id.length !== NCCL_UNIQUE_ID_BYTES) {
    throw new BackendError(
      `NCCL rendezvous: createId returned ${id?.length ?? 0} bytes, expected ${NCCL_UNIQUE_ID_BYTES}`,
    );
  }
  const sockets = options.size > 1 ? await serve(host, port, options.size, id, timeoutMs, keepOpen) : new Map();
  return { id, sockets };
}

/** A rank of a group formed by {@link rendezvousNcclGroup}: the id, and the watch over the other ranks. */
export interface NcclGroupRendezvous {
  /** The group's NCCL id, the same 128 bytes on every rank. */
  readonly uniqueId: Uint8Array;
  /**
   * Calls `listener` once, when another rank is gone or aborts: its connection closed (or, across nodes,
   * TCP keep-alive gave up on it) before it left, it called {@link NcclGroupRendezvous.abort}, or rank 0
   * reported either of those of a third rank. The reason names the rank. At once when that already happened.
   */
  onPeerLost(listener: (reason: string) => void): void;
  /**
   * Tells every other rank that this one aborts the group (its device failed, say), with `reason`, and
   * closes its connections: their listeners run, so they abort their communicators instead of waiting in a
   * collective for this rank. This rank's own listeners do not run. Does nothing after `leave` or a
   * previous `abort`; once another rank was lost it only closes the connections (every rank knows).
   */
  abort(reason: string): void;
  /** Tells the other ranks this one leaves normally and closes its connections. Idempotent. */
  leave(): void;
}

/**
 * {@link rendezvousNcclUniqueId}, keeping the connections open afterwards (rank 0 to every rank) as a
 * watch over the ranks' processes: when a rank's process goes away without {@link NcclGroupRendezvous.leave},
 * rank 0 sees its connection close and tells every other rank, and a rank that loses its connection to
 * rank 0 counts rank 0 as gone. Connections do not keep a process alive (they are unref'd).
 * @throws ValidationError for a bad address, rank or size; BackendError on timeout.
 */
export async function rendezvousNcclGroup(options: NcclRendezvousOptions): Promise<NcclGroupRendezvous> {
  const { id, sockets } = await rendezvous(options, true);
  const listeners: ((reason: string) => void)[] = [];
  let lost: string | undefined;
  let closing = false; // this rank left or aborted
  const peerLost = (reason: string) => {
    if (lost !== undefined || closing) return;
    lost = reason;
    // rank 0 passes the news on to the ranks still connected
    if (options.rank === 0)
      for (const socket of sockets.values()) if (!socket.destroyed) socket.write(frame(LOST, reason));
    for (const listener of listeners.splice(0)) listener(reason);
  };
  for (const [peer, socket] of sockets) {
    let left = false;
    let pending: Buffer = Buffer.alloc(0);
    socket.unref();
    socket.setKeepAlive(true, 10_000);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length > 0) {
        const kind = pending[0];
        if (kind !== LOST && kind !== ABORT) {
          if (kind === BYE) left = true;
          pending = pending.subarray(1);
          continue;
        }
        if (pending.length < 3) return; // the rest is on its way
        const end = 3 + pending.readUInt16BE(1);
        if (pending.length < end) return;
        const reason = pending.subarray(3, end).toString('utf8');
        pending = pending.subarray(end);
        if (left) continue;
        if (kind === ABORT) peerLost(`rank ${peer} aborted the group: ${reason}`);
        else peerLost(`rank 0 reports: ${reason}`);
      }
    });
    socket.on('error', () => {}); // 'close' follows
    const gone = () => {
      sockets.delete(peer);
      if (!left) peerLost(`the connection to rank ${peer} closed before it left (its process is gone)`);
    };
    // (a connection can close between the id's exchange and this watch)
    if (socket.destroyed) gone();
    else socket.on('close', gone);
    socket.resume(); // what the peer sent since the id's exchange (an abort, say) was kept for this watch
  }
  const close = (last?: Buffer) => {
    closing = true;
    for (const socket of sockets.values()) {
      if (last) socket.end(last);
      else socket.end();
    }
  };
  return {
    uniqueId: id,
    onPeerLost(listener) {
      if (lost !== undefined) listener(lost);
      else listeners.push(listener);
    },
    abort(reason) {
      // once another rank was lost, every rank has been told already: only the connections are closed
      if (!closing) close(lost === undefined ? frame(ABORT, String(reason)) : undefined);
    },
    leave() {
      if (!closing) close(Buffer.of(BYE));
    },
  };
}

/** Options of {@link joinNcclRankOverTcp}. */
export interface JoinNcclRankOverTcpOptions extends Omit<NcclRendezvousOptions, 'createId'> {
  /** The backend of this process's GPU for this rank. */
  backend: CudaBackend;
}

/**
 * Joins a multi-process (or multi-node) NCCL group: the id by {@link rendezvousNcclGroup}, then
 * `ncclCommInitRank`. Every process calls it with the same address and size and its own rank. A rank whose
 * process goes away, or whose init fails, before the group formed makes the others stop waiting in theirs
 * (their joins reject with a `BackendError` naming it). Once the group formed, when another rank's process
 * goes away or another rank aborts, this rank's communicator is aborted ({@link abortNcclRanks}): its
 * collectives waiting for that rank end and its later all-reduces throw.
 * `abort(reason)` does the same from this side: call it when this process's device failed and it lives on
 * (a server that catches the error), so that the other ranks stop waiting for it; an all-reduce that
 * fails here (a `BackendError`) calls it itself. `dispose` leaves the group normally.
 */
export async function joinNcclRankOverTcp(options: JoinNcclRankOverTcpOptions): Promise<NcclRankCommunicator> {
  const { backend, ...rendezvousOptions } = options;
  const group = await rendezvousNcclGroup(rendezvousOptions);
  // a rank gone before the group formed: stop waiting for it in ncclCommInitRank
  const forming = new AbortController();
  group.onPeerLost((reason) => forming.abort(new Error(reason)));
  let communicator: NcclRankCommunicator;
  try {
    communicator = await joinNcclRank({
      backend,
      uniqueId: group.uniqueId,
      rank: options.rank,
      size: options.size,
      signal: forming.signal,
      // a peer may be gone before this rank hears of it: disposing must not wait for its collectives
      abortOnDispose: true,
    });
  } catch (error) {
    // the other ranks wait in their ncclCommInitRank for this one: they must stop too
    group.abort(`its ncclCommInitRank failed: ${(error as Error).message}`);
    throw error;
  }
  return watchedRank(group, communicator, () => abortNcclRanks(group.uniqueId));
}

/**
 * A rank communicator tied to its group's watch: the watch's news aborts it (`abortLocal`), `abort` tells
 * the group, an all-reduce that fails with a `BackendError` aborts the group, and one that fails after the
 * group ended says why. `dispose` leaves the group. Exported for tests.
 * @internal
 */
export function watchedRank(
  group: NcclGroupRendezvous,
  communicator: NcclRankCommunicator,
  abortLocal: () => Promise<unknown>,
): NcclRankCommunicator {
  const abortHere = () => abortLocal().catch(() => 0);
  let ended: string | undefined; // why this rank's communicator was aborted
  group.onPeerLost((reason) => {
    ended ??= reason;
    void abortHere();
  });
  const abort = async (reason: string): Promise<void> => {
    ended ??= `this rank aborted the group: ${reason}`;
    group.abort(reason);
    await abortHere();
  };
  // a rank whose all-reduce fails will not join the next one: the others must not wait for it
  const guarded = async (collective: Promise<void>): Promise<void> => {
    try {
      await collective;
    } catch (error) {
      if (!(error instanceof BackendError)) throw error;
      if (ended !== undefined) throw new BackendError(`${error.message}; ${ended}`, { cause: error });
      await abort(`its all-reduce failed: ${error.message}`);
      throw error;
    }
  };
  return {
    rank: communicator.rank,
    size: communicator.size,
    graphSteps: communicator.graphSteps,
    allReduceSum: (data) => guarded(communicator.allReduceSum(data)),
    allReduceDeviceSum: (buffer, elementCount) => guarded(communicator.allReduceDeviceSum(buffer, elementCount)),
    abort,
    dispose() {
      group.leave();
      communicator.dispose();
    },
  };
}
