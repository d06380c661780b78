/**
 * The TCP rendezvous that lets separate processes (on one node or several) form one NCCL group: rank 0
 * creates the 128-byte `ncclUniqueId` and serves it on a TCP address; every other rank connects, says
 * which rank it is, and receives the id; then all ranks call `ncclCommInitRank` (see
 * {@link joinNcclRankOverTcp}). Only the id travels here: NCCL is the distributed engine.
 *
 * @packageDocumentation
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { BackendError, ValidationError } from '@fairkv/core';
import type { CudaBackend } from './cuda-backend.js';
import { createNcclUniqueId, joinNcclRank, NCCL_UNIQUE_ID_BYTES, validateRank } from './nccl-rank.js';
import type { NcclRankCommunicator } from './nccl-rank-communicators.js';

const HELLO = Buffer.from('FKVNCCL1');

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

/** Reads exactly `bytes` bytes from a socket. */
function readExactly(socket: Socket, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= bytes) {
        cleanup();
        resolve(Buffer.concat(chunks).subarray(0, bytes));
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

function serve(host: string, port: number, size: number, id: Uint8Array, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const served = new Set<number>();
    let server: Server | undefined;
    const finish = (error?: Error) => {
      clearTimeout(timer);
      server?.close();
      if (error) reject(error);
      else resolve();
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
          served.add(rank);
          socket.end(Buffer.from(id), () => {
            if (served.size === size - 1) finish();
          });
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

async function fetchId(host: string, port: number, rank: number, timeoutMs: number): Promise<Uint8Array> {
  const deadline = Date.now() + timeoutMs;
  let lastError: Error | undefined;
  while (Date.now() < deadline) {
    try {
      const socket = connect({ host, port });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('connect', resolve);
          socket.once('error', reject);
        });
        const hello = Buffer.alloc(HELLO.length + 4);
        HELLO.copy(hello);
        hello.writeUInt32BE(rank, HELLO.length);
        socket.write(hello);
        return new Uint8Array(await readExactly(socket, NCCL_UNIQUE_ID_BYTES));
      } finally {
        socket.destroy();
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
  const { host, port, timeoutMs } = validate(options);
  if (options.rank !== 0) return fetchId(host, port, options.rank, timeoutMs);
  const id = (options.createId ?? createNcclUniqueId)();
  if (!(id instanceof Uint8Array) || id.length !== NCCL_UNIQUE_ID_BYTES) {
    throw new BackendError(
      `NCCL rendezvous: createId returned ${id?.length ?? 0} bytes, expected ${NCCL_UNIQUE_ID_BYTES}`,
    );
  }
  if (options.size > 1) await serve(host, port, options.size, id, timeoutMs);
  return id;
}

/** Options of {@link joinNcclRankOverTcp}. */
export interface JoinNcclRankOverTcpOptions extends Omit<NcclRendezvousOptions, 'createId'> {
  /** The backend of this process's GPU for this rank. */
  backend: CudaBackend;
}

/**
 * Joins a multi-process (or multi-node) NCCL group: the id by {@link rendezvousNcclUniqueId}, then
 * `ncclCommInitRank`. Every process calls it with the same address and size and its own rank.
 */
export async function joinNcclRankOverTcp(options: JoinNcclRankOverTcpOptions): Promise<NcclRankCommunicator> {
  const { backend, ...rendezvous } = options;
  const uniqueId = await rendezvousNcclUniqueId(rendezvous);
  return joinNcclRank({ backend, uniqueId, rank: options.rank, size: options.size });
}
