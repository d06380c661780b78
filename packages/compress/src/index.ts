/**
 * `@fairkv/compress`: KV-cache compression policies that turn one prompt's prefill into real per-(layer, kv head)
 * budgets and sorted kept-token indices (full, StreamingLLM, SnapKV, PyramidKV, Ada-KV, HeadKV, DuoAttention,
 * H2O), composed kvpress-style from scorers and budget allocators, plus the aggregation of many prompts' budgets
 * into a @fairkv/core head-load profile. See docs/compression.md for every policy's source and defaults.
 *
 * @packageDocumentation
 */

export type { AggregateProfileOptions } from './aggregate-profile.js';
export { aggregateProfile } from './aggregate-profile.js';
export { type AdaKvAllocatorOptions, type AdaKvVariant, adaKvAllocator } from './allocators/ada-kv-allocator.js';
export type { AllocationRequest, BudgetAllocator, LayerBudget, LayerBudgetRequest } from './allocators/allocator.js';
export {
  type HeadImportanceAllocatorOptions,
  headImportanceAllocator,
} from './allocators/head-importance-allocator.js';
export { type PyramidLayerBudgetOptions, pyramidLayerBudget } from './allocators/pyramid-layer-budget.js';
export { retrievalStreamingAllocator } from './allocators/retrieval-streaming-allocator.js';
export { uniformAllocator } from './allocators/uniform-allocator.js';
export { uniformLayerBudget } from './allocators/uniform-layer-budget.js';
export type { ComposedPolicyOptions, CompressionPolicy } from './compose-policy.js';
export { composePolicy } from './compose-policy.js';
export { compressPrompt } from './compress-prompt.js';
export { createPolicy, POLICY_NAMES, type PolicyName, type PolicySpec } from './create-policy.js';
export { importanceFromProfile, parseHeadKvImportance } from './headkv-importance.js';
export type { LayerCompression, PromptCompression } from './layer-compression.js';
export { validateLayerCompression } from './layer-compression.js';
export type { LayerObservation, LayerPosition, ObservationRequirements } from './observation.js';
export { validateLayerObservation, validateLayerPosition } from './observation.js';
export { type AdaKvOptions, adaKvPolicy } from './policies/ada-kv.js';
export { type DuoAttentionOptions, duoAttentionPolicy } from './policies/duo-attention.js';
export { fullPolicy } from './policies/full.js';
export { type H2oOptions, h2oPolicy } from './policies/h2o.js';
export { type HeadKvOptions, headKvPolicy } from './policies/headkv.js';
export { type PyramidKvOptions, pyramidKvPolicy } from './policies/pyramidkv.js';
export { snapKvPolicy } from './policies/snapkv.js';
export { type StreamingLlmOptions, streamingLlmPolicy } from './policies/streaming-llm.js';
export type { WindowScoringOptions } from './policies/window-scoring-options.js';
export { h2oScorer } from './scorers/h2o-scorer.js';
export { keyNormScorer } from './scorers/knorm-scorer.js';
export { positionScorer } from './scorers/position-scorer.js';
export type { ScoreRequest, Scorer, ScorerInput } from './scorers/scorer.js';
export { type SnapKvScorerOptions, snapKvScorer } from './scorers/snapkv-scorer.js';

export type { GroupReduction } from './selection/group-reduction.js';
export { reduceGroups } from './selection/group-reduction.js';
export { kthLargest } from './selection/kth-largest.js';
export type { Pooling } from './selection/pool1d.js';
export { pool1d } from './selection/pool1d.js';
export { roundHalfEven } from './selection/round-half-even.js';
export { countTopPerRow, selectTopPositions } from './selection/select-top.js';
