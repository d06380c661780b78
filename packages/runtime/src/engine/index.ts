export {
  abortLocalCommunicators,
  abortSharedCommunicators,
  CollectiveAbortedError,
  type Communicator,
  createLocalCommunicators,
  createSharedCommunicatorState,
  type SharedCommunicatorState,
  SharedMemoryCommunicator,
  SoloCommunicator,
} from './communicator.js';
export {
  type BackendName,
  type CreateEngineOptions,
  createInferenceEngine,
  type DeviceBackendFactory,
} from './create-engine.js';
export {
  type DecodeRow,
  DeviceExecutor,
  type DeviceExecutorOptions,
  type PrefillObservation,
  type RowSampling,
} from './device-executor.js';
export { type DeviceHandle, inlineDeviceHandle, type PrefillNeeds } from './device-handle.js';
export {
  type DeviceShard,
  deviceShardsFromPlan,
  type HostedHead,
  type ReplicaTable,
  singleDevicePlan,
  splitRange,
} from './device-shards.js';
export { type DeviceStats, LayerTimer } from './device-stats.js';
export { dummyShardWeights, shapedShardWeights } from './dummy-weights.js';
export {
  type FinishReason,
  type GenerateOptions,
  type GenerationChunk,
  type GenerationResult,
  GenerationStream,
  type ResolvedGenerateOptions,
  resolveGenerateOptions,
} from './generation.js';
export { type EngineMetrics, InferenceEngine, type InferenceEngineOptions } from './inference-engine.js';
export { type KvSequence, KvSequences } from './kv-sequences.js';
export type { HeadObservation, OnLayerObserved } from './prefill-observation.js';
export { type ProfileHeadLoadsOptions, profileHeadLoads } from './profile.js';
export { metricsToPrometheus } from './prometheus.js';
export { ReplicaRouter } from './replica-router.js';
export { ShardForward, type ShardForwardOptions } from './shard-forward.js';
export {
  type HostWeight,
  type LayerShardWeights,
  type ShardWeightSource,
  type ShardWeights,
  type SliceShardWeightsOptions,
  sliceShardWeights,
} from './shard-weights.js';
export {
  type AbortWorkerDevices,
  type CreateWorkerDevice,
  isWorkerBackendModule,
  type WorkerBackendModule,
  type WorkerDevice,
  type WorkerDeviceSetup,
} from './worker-backend.js';
export {
  createWorkerDevices,
  defaultWorkerScript,
  type WorkerDevicesOptions,
  type WorkerWeightSource,
} from './worker-devices.js';
