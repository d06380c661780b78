// Host launchers of every kernel of the fairkv Backend contract (packages/kernels/src/kernel-args.ts).
// Pointers are device pointers; every launcher enqueues on `stream` and checks the launch.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "../common.h"

namespace fairkv {

struct EmbeddingGatherParams {
  const void* table;
  DType tableDType;
  const int* tokens;
  float* output;
  int rowCount, vocabSize, hiddenSize;
};
void embeddingGather(const EmbeddingGatherParams& params, cudaStream_t stream);

struct RmsNormParams {
  /** Written when `addend` is set (input += addend). */
  float* input;
  const void* weight;
  DType weightDType;
  float* output;
  int rowCount, size;
  float epsilon;
  /** Optional: added into `input` before the norm (nullptr: none). */
  const float* addend = nullptr;
};
void rmsNorm(const RmsNormParams& params, cudaStream_t stream);

/** Rows the CUDA-core weight-streaming kernel (matmul.cu) takes per pass: the last resort, without cuBLAS or tensor cores. */
constexpr int kMatmulStreamingRows = 16;
struct MatmulParams {
  const float* input;
  const void* weight;
  DType weightDType;
  float* output;
  int rowCount, innerSize, outerSize;
};
void matmulStreaming(const MatmulParams& params, cudaStream_t stream);

/** Rows the GEMV kernel (matmul-gemv.cu) takes at most: f16/bf16 weights (the tensor-core kernel takes more). */
constexpr int kMatmulGemvRows = 4;
/** Rows the GEMV kernel takes at most with f32 weights (the automatic choice: up to 4, 5-8 for small weights). */
constexpr int kMatmulGemvRowsF32 = 8;
/** Rows the tensor-core decode matmul (matmul-mma.cu) takes at most, with f16/bf16 weights. */
constexpr int kMatmulTensorCoreRows = 128;
/** Rows the tensor-core decode matmul takes at most with f32 weights (TF32 split, mma.sync kernel only). */
constexpr int kMatmulTensorCoreRowsF32 = 64;
/** Output segments one tensor-core matmul may write (fused projections: q | k | v). */
constexpr int kMatmulMaxOutputs = 3;
/** Where output columns go: the first widths[0] to data[0] (row stride widths[0]), the next widths[1] to data[1]... */
struct MatmulOutputs {
  float* data[kMatmulMaxOutputs];
  int widths[kMatmulMaxOutputs];
  int count;
};
/** Copies the columns of `source` `[rows][total]` into the outputs' segments (a split projection). */
void splitColumns(const float* source, int rows, int total, const MatmulOutputs& outputs, cudaStream_t stream);
/**
 * Whether the tensor-core matmul takes this call: f16/bf16 weights at 1..kMatmulTensorCoreRows rows with
 * inner a multiple of 8, or f32 weights (TF32 split into hi + lo, three products: about f32 accuracy) at
 * 1..kMatmulTensorCoreRowsF32 rows with inner a multiple of 4 and a 16-byte aligned input; the weight
 * 16-byte aligned.
 */
bool matmulTensorCoreSupports(const MatmulParams& params);
/** Workspace the tensor-core matmul needs: the input rounded to the weight dtype (none for f32 weights). */
size_t matmulTensorCoreWorkspaceBytes(const MatmulParams& params);
/**
 * `clusters`: the device has thread-block clusters and programmatic dependent launch (compute
 * capability 9.0+), so the inner dimension may split; `bulkCopies` (there too): the weight streams by
 * bulk tensor copies (TMA) rather than per-thread copies; `warpgroupMma` (with bulk copies, compute
 * capability 9.0 and sm_90a code in the addon): the warpgroup-MMA kernel.
 */
void matmulTensorCore(const MatmulParams& params, const MatmulOutputs& outputs, void* workspace, int multiprocessorCount,
                      bool clusters, bool bulkCopies, bool warpgroupMma, cudaStream_t stream);
/**
 * Whether this addon holds the decode matmul's warpgroup-MMA kernel (sm_90a code) for the current
 * device: runs a one-thread probe kernel and waits for it (false on any error). `warpgroupMma` above
 * may be true only then.
 */
bool matmulWarpgroupMmaBuilt();
/**
 * Whether the GEMV kernel takes this call: f16/bf16 weights at 1..kMatmulGemvRows rows or f32 weights at
 * 1..kMatmulGemvRowsF32, inner a multiple of one 16-byte load (8 elements, 4 of f32), weight and input
 * 16-byte aligned.
 */
bool matmulGemvSupports(const MatmulParams& params);
/**
 * The GEMV kernel (f32 input read directly, outputs written in place); `programmatic`: a programmatic
 * dependent launch (compute capability 9.0+), its first weight loads issued before the kernel ahead ends.
 */
void matmulGemv(const MatmulParams& params, const MatmulOutputs& outputs, int multiprocessorCount, bool programmatic,
                cudaStream_t stream);
/** Rounds `count` f32 values to `dtype` (f16 or bf16) for a cuBLAS call whose operands share a dtype. */
void convertFloatTo(const float* input, void* output, DType dtype, long long count, cudaStream_t stream);

struct RopeParams {
  float* data;
  const int* positions;
  const float* table;
  int rowCount, headCount, headDim, tablePositionCount;
  bool halfSplit;
};
void rope(const RopeParams& params, cudaStream_t stream);

void swiglu(const float* gate, const float* up, float* output, long long count, cudaStream_t stream);
void addInPlace(float* target, const float* addend, long long count, cudaStream_t stream);
/** Fills `count` elements of `dtype` at `data` with `value` converted to that dtype. */
void fillValue(void* data, DType dtype, long long count, double value, cudaStream_t stream);
/**
 * Copies `bytes` (a multiple of 2) from page-locked host memory mapped into the device (`source`, a
 * device pointer) to `destination`: a kernel, where a graph's copy node would take the copy engine.
 */
void copyFromMappedHost(void* destination, const void* source, long long bytes, cudaStream_t stream);

struct PrefillAttentionParams {
  const float *query, *key, *value;
  float* output;
  float* windowScores;
  int tokenCount, queryHeadCount, kvHeadCount, headDim, windowSize;
  float scale;
  /** Optional `[queryHeadCount][tokenCount]` column sums of the causal softmax (H2O), or null. */
  float* accumulatedScores;
  /** Optional `[queryHeadCount][tokenCount]` column sums of the window rows, or null (`windowScores` may then be null). */
  float* windowScoreSums;
  /** K and V rounded before every product: 0 as given (f32), 1 to bf16, 2 to f16 (the contract's `kvRounding`). */
  int kvRounding;
  /**
   * Q, K, V and the probabilities rounded before their products (the contract's `productRounding`), codes as
   * `kvRounding`: the tensor-core path then multiplies on 16-bit tensor cores.
   */
  int productRounding;
};
/**
 * Whether the tensor-core kernel can run this call here: head dim 64 or 128, compute capability 8.0+,
 * query, key, value and output 16-byte aligned. Otherwise the element kernel runs.
 */
bool prefillAttentionUsesTensorCores(const PrefillAttentionParams& params, int computeMajor);
/**
 * Workspace of the tensor-core path: the log-sum-exp of each window row, or of every row when the
 * accumulated scores are asked for (queryHeadCount x that many f32); with `productRounding`, also Q, K
 * and V in that 16-bit type.
 */
size_t prefillAttentionWorkspaceBytes(const PrefillAttentionParams& params);
/**
 * `tensorCores` only where prefillAttentionUsesTensorCores said so; `workspace` its bytes then.
 * `warpgroupMma` (Hopper, sm_90a code built): productRounding calls of head dim 128 run on warpgroup MMAs.
 */
void prefillAttention(const PrefillAttentionParams& params, void* workspace, bool tensorCores, bool warpgroupMma,
                      cudaStream_t stream);

struct KvPoolParams {
  void* pool;
  DType poolDType;
  const int* blockTable;
  int blockCount, blockSize, headDim, blockTableLength;
};

struct KvAppendParams {
  KvPoolParams kv;
  const float *key, *value;
  const int* entries;
  int rowCount, kvHeadCount, entryCount;
};
void kvAppend(const KvAppendParams& params, cudaStream_t stream);

struct KvCompactParams {
  KvPoolParams kv;
  const int* keptIndices;
  const int* sequences;
  int sequenceCount, keptIndexCount;
};
void kvCompact(const KvCompactParams& params, cudaStream_t stream);

struct RaggedDecodeAttentionParams {
  const float* query;
  float* output;
  const void* pool;
  DType poolDType;
  const int* blockTable;
  const int* pairs;
  int pairCount, kvHeadCount, groupSize, headDim, blockSize;
  float scale;
  /**
   * Work items the schedule makes: at least `targetItems` (8 per SM by default: one per persistent
   * warp) and at most `mostItems` (16 per SM, two per warp; 0 = targetItems), as many as keep chunks of
   * about `preferredChunkTokens` (measured on H100: calls of about a million tokens run best with 8 items
   * per SM, calls of millions with 16). Where chunks of that length would need a second round of the
   * work queue that at most half the warps take part in, the schedule takes 8 or 16 per SM instead,
   * whichever its estimate of the queue's end prefers (the 10 per SM that 2,048-token chunks made at 40
   * requests of the quarter-long mix left the second round to a fifth of the warps: 13% slower than 8).
   * Bounds the workspace.
   */
  int targetItems;
  int mostItems;
  int preferredChunkTokens;
  /** Shortest chunk a pair is split into. */
  int minChunkTokens;
  /**
   * Small calls: where `targetItems` items would be shorter than this many tokens, the schedule makes
   * half as many, twice as long (0: never). Each item has a fixed cost (the query's load, the pipeline's
   * fill, a partial written and merged); on an H100 halving them made calls of 1-8 requests of the
   * benchmark's mixes up to 27% faster (0-3% at 8 requests), and calls of 16 (chunks near 1,000 tokens) 2-3% slower; the
   * addon passes 768.
   */
  int smallCallChunkTokens;
  /** SMs of the device (its context knows them): the persistent kernel runs two blocks on each. */
  int multiprocessorCount;
  /**
   * Programmatic dependent launch of the attention and combine kernels; only where the device has it
   * (compute capability 9.0+, which its context knows).
   */
  bool dependentLaunch = false;
  /**
   * Benchmarks only (null otherwise): a timeline of the call in %globaltimer nanoseconds, laid out as
   * DecodeTraceLayout says: the schedule's start and end (the schedule kernel's, or the tensor-core
   * kernel's block 0's); per tensor-core warp its start (after its dependency wait), end (after its
   * last write), SM and the stages it streamed; per combine block that merges, its start and end.
   */
  unsigned long long* trace = nullptr;
  /**
   * A device word only this context's attention calls use, and a number new for each call (never 0):
   * the tensor-core kernel then builds its own schedule in its first block and publishes it there,
   * instead of a schedule kernel running first. Null: the schedule kernel runs.
   */
  unsigned int* scheduleReady = nullptr;
  unsigned int scheduleEpoch = 0;
  /**
   * A second device word only this context's attention calls use, zero before its first call: with it
   * (and `scheduleReady`, and `localSchedule`), every block of the tensor-core kernel plans the calls'
   * chunks itself in shared memory where the pair table fits there, so no warp waits for block 0 or
   * reads the schedule from global memory; the work queue counts in this word and the combine kernel
   * zeroes it again.
   */
  int* workCounter = nullptr;
  /** Benchmarks may turn the per-block schedule off (block 0 then builds it and publishes it). */
  bool localSchedule = true;
  /** Blocks of the pool (bounds the bulk copies' tensor map; 0: unknown, no bulk copies). */
  int blockCount = 0;
  /**
   * The tensor-core kernel may bring its stages with bulk tensor copies (TMA) instead of per-lane
   * `cp.async`: only on compute capability 9.0+, and used where the block size is a multiple of a
   * stage (16 tokens for f16/bf16 pools, 8 for f32).
   */
  bool bulkCopies = false;
  /** Benchmarks may turn the tensor-core kernel off (the CUDA-core kernel then serves every call). */
  bool tensorCores = true;
};
/**
 * Word offsets in RaggedDecodeAttentionParams::trace (bench/cuda-decode-attention reads the same
 * layout): words 0 and 1 the schedule, then kWordsPerWarp words per tensor-core warp (room for
 * kWarpsPerMultiprocessor per SM; the kernel runs 8: two blocks of 4 warps), then 2 words per combine block (blockIdx.x x gridDim.y + blockIdx.y: pair x 8 subgroups + head).
 */
struct DecodeTraceLayout {
  static constexpr int kWordsPerWarp = 4;
  static constexpr int kWarpsPerMultiprocessor = 16;  // room for up to 16 tensor-core warps per SM
  /** First word of tensor-core warp `warp` (start, end, SM, stages). */
  static constexpr long long warp(long long warp) { return 2 + kWordsPerWarp * warp; }
  /** First word of combine block `block` (start, end) on a device with `multiprocessors` SMs. */
  static constexpr long long combine(int multiprocessors, long long block) {
    return warp(static_cast<long long>(kWarpsPerMultiprocessor) * multiprocessors) + 2 * block;
  }
};
size_t raggedDecodeAttentionWorkspaceBytes(const RaggedDecodeAttentionParams& params);
int maxRaggedDecodeHeadDim(DType poolDType);
void raggedDecodeAttention(const RaggedDecodeAttentionParams& params, void* workspace, cudaStream_t stream);

void argmax(const float* logits, int* output, int rowCount, int vocabSize, cudaStream_t stream);

struct TopPSampleParams {
  const float* logits;
  const float* temperatures;
  const float* topPs;
  const int* seeds;
  int* output;
  int rowCount, vocabSize;
};
size_t topPSampleWorkspaceBytes(int rowCount, int vocabSize);
void topPSample(const TopPSampleParams& params, void* workspace, size_t workspaceBytes, cudaStream_t stream);

}  // namespace fairkv
