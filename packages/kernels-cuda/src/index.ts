/**
 * `@fairkv/kernels-cuda`: the CUDA backend of fairkv. An N-API addon built from source with the
 * local CUDA toolkit (`scripts/build-native.mjs`), probe-loaded in a child process, implementing the
 * Backend contract of `@fairkv/kernels` with CUDA kernels (flash-decoding style ragged decode
 * attention over the paged KV pool), cuBLAS GEMMs and NCCL all-reduce.
 *
 * ```ts
 * import { createCudaBackend, probeCuda } from '@fairkv/kernels-cuda';
 * const probe = probeCuda();
 * if (probe.available) {
 *   const backend = createCudaBackend({ device: 0 });
 *   // backend.createBuffer(...), backend.run('ragged-decode-attention', {...}), await backend.download(...)
 *   backend.dispose();
 * } else console.log(probe.reason);
 * ```
 *
 * @packageDocumentation
 */
export { type AddonBuild, codeForDevice, readAddonBuild } from './addon-build.js';
export { ADDON_RELATIVE_PATH, addonPath } from './addon-path.js';
export {
  CUDA_HEAD_DIMS,
  CUDA_STORAGE_DTYPES,
  CudaBackend,
  type CudaBackendOptions,
  createCudaBackend,
} from './cuda-backend.js';
export { CudaBuffer } from './cuda-buffer.js';
export { loadNativeAddon } from './load-native.js';
export * from './native.js';
export { createNcclCommunicator, NcclCommunicator } from './nccl-communicator.js';
export {
  abortNcclRanks,
  createNcclUniqueId,
  type JoinNcclRankOptions,
  joinNcclRank,
  NCCL_UNIQUE_ID_BYTES,
} from './nccl-rank.js';
export {
  createNcclRankCommunicators,
  createRankCommunicators,
  type GroupAllReduce,
  type NcclRankCommunicator,
} from './nccl-rank-communicators.js';
export {
  type JoinNcclRankOverTcpOptions,
  joinNcclRankOverTcp,
  type NcclGroupRendezvous,
  type NcclRendezvousOptions,
  rendezvousNcclGroup,
  rendezvousNcclUniqueId,
} from './nccl-rendezvous.js';
export { type CudaProbeResult, type ProbeOptions, probeCuda } from './probe.js';
export {
  abortWorkerDevices,
  type CudaWorkerBackendOptions,
  type CudaWorkerBackendSpec,
  type CudaWorkerDeviceSetup,
  type CudaWorkerOptions,
  createWorkerDevice,
  cudaWorkerBackend,
} from './worker-device.js';
