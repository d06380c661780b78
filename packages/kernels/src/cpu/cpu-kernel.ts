import type { KernelName } from '@fairkv/core';
import type { DeviceBuffer } from '../backend.js';
import type { KernelArgsMap } from '../kernel-args.js';
import type { StoredArray } from './stored-array.js';

/** What a CPU kernel may use of its backend: typed views of buffers and reusable scratch memory. */
export interface CpuKernelContext {
  /** The f32 storage of an f32 buffer. */
  f32(buffer: DeviceBuffer): Float32Array;
  /** The storage of an i32 buffer. */
  i32(buffer: DeviceBuffer): Int32Array;
  /** The storage of a float buffer of any stored dtype. */
  stored(buffer: DeviceBuffer): StoredArray;
  /** A reusable f32 scratch array of at least `length` elements; `slot` separates concurrent uses. */
  scratchF32(slot: number, length: number): Float32Array;
  /** A reusable f64 scratch array of at least `length` elements. */
  scratchF64(slot: number, length: number): Float64Array;
  /** The thread pool, when the backend was created with `threads > 1`. */
  parallel?: CpuParallelRunner;
}

/** Name of a kernel function that the CPU backend's thread pool can spread over threads. */
export type ParallelFunctionName = 'matmulRange' | 'attendPairs';

/**
 * What a CPU kernel may use of the backend's thread pool (`CpuThreadPool` implements it; declared here
 * so that the kernels, which the pool's workers run, need not import the pool).
 */
export interface CpuParallelRunner {
  /** Threads a call can use, the calling thread included. */
  readonly size: number;
  /** The f16 decode table in shared memory (sent to workers without copying). */
  readonly f16Table: Float32Array;
  /** Runs `name(...parts[i])` for every part, part 0 on the calling thread; returns when all finish. */
  run(name: ParallelFunctionName, parts: readonly unknown[][]): void;
}

/**
 * One kernel of the CPU backend: its id and a synchronous implementation. Arguments arrive already
 * validated by `validateKernelArgs`; implementations check index *contents* and throw `BackendError`.
 */
export interface CpuKernel<K extends KernelName = KernelName> {
  readonly name: K;
  run(args: KernelArgsMap[K], context: CpuKernelContext): void;
}

/** Any one of the CPU kernels (a union over kernel ids, so a list can hold them all). */
export type AnyCpuKernel = { [K in KernelName]: CpuKernel<K> }[KernelName];
