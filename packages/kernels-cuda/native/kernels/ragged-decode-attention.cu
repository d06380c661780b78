// Ragged decode attention over the paged KV pool (layout: packages/kernels/src/kv-layout.ts), GQA,
// flash-decoding style (Dao et al., "Flash-Decoding for long-context inference", 2023):
//
// 1. a one-block schedule kernel reads the pair lengths on the device, picks a chunk length so the
//    whole call makes about `targetItems` work items, and writes each pair's first item index
//    (an exclusive prefix sum of its chunk counts);
// 2. the main kernel runs one thread block per (work item, group of up to 8 query heads): the whole
//    GQA group of a kv head lives in one block, so each K and V row is read once per group, with
//    16-byte loads, f32 accumulation and an online softmax over sub-chunks of 256 tokens; pairs that
//    fit in one item write their output directly, longer ones write partial (acc, max, sum);
// 3. a combine kernel merges the partials of pairs split over several items.
// Long pairs therefore spread over many SMs while short pairs cost one small block each.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "../common.h"
#include "dtype-convert.cuh"
#include "kernels.h"

namespace fairkv {
namespace {

constexpr int kThreads = 256;
constexpr int kSubChunk = 256;
constexpr int kScheduleThreads = 1024;
constexpr int kUnroll = 4;
constexpr float kLog2e = 1.4426950408889634f;

struct Schedule {
  int chunkTokens;
  int itemCount;
};

__global__ void scheduleKernel(const int* __restrict__ pairs, int pairCount, int targetItems, int minChunk,
                               int* __restrict__ itemStart, Schedule* __restrict__ schedule) {
  using Reduce = cub::BlockReduce<long long, kScheduleThreads>;
  using Scan = cub::BlockScan<long long, kScheduleThreads>;
  __shared__ union {
    typename Reduce::TempStorage reduce;
    typename Scan::TempStorage scan;
  } temp;
  __shared__ int sharedChunk;

  long long localTokens = 0;
  for (int p = threadIdx.x; p < pairCount; p += kScheduleThreads) localTokens += max(pairs[p * 4 + 2], 0);
  const long long totalTokens = Reduce(temp.reduce).Sum(localTokens);
  if (threadIdx.x == 0) {
    long long chunk = (totalTokens + targetItems - 1) / targetItems;
    chunk = ((chunk + 63) / 64) * 64;
    if (chunk < minChunk) chunk = minChunk;
    if (chunk > (1LL << 30)) chunk = 1LL << 30;
    sharedChunk = static_cast<int>(chunk);
  }
  __syncthreads();
  const int chunk = sharedChunk;

  const int perThread = (pairCount + kScheduleThreads - 1) / kScheduleThreads;
  const int begin = min(pairCount, threadIdx.x * perThread);
  const int end = min(pairCount, begin + perThread);
  long long localItems = 0;
  for (int p = begin; p < end; ++p) {
    const int length = max(pairs[p * 4 + 2], 0);
    localItems += length == 0 ? 1 : (length + chunk - 1) / chunk;
  }
  long long offset = 0;
  long long total = 0;
  Scan(temp.scan).ExclusiveSum(localItems, offset, total);
  for (int p = begin; p < end; ++p) {
    itemStart[p] = static_cast<int>(offset);
    const int length = max(pairs[p * 4 + 2], 0);
    offset += length == 0 ? 1 : (length + chunk - 1) / chunk;
  }
  if (threadIdx.x == 0) {
    itemStart[pairCount] = static_cast<int>(total);
    schedule->chunkTokens = chunk;
    schedule->itemCount = static_cast<int>(total);
  }
}

/** Loads `E` elements of a row starting at element `d0` (elements at or past `D` read as 0). */
template <typename T, int E>
__device__ __forceinline__ void loadRow(const T* __restrict__ row, int d0, int D, bool vectorized, float (&out)[E]) {
  if (vectorized) {
    constexpr int W = VectorWidth<T>::value;
#pragma unroll
    for (int j = 0; j < E / W; ++j) {
      if (d0 + j * W < D) {
        const uint4 raw = __ldg(reinterpret_cast<const uint4*>(row + d0 + j * W));
        unpack16<T>(raw, out + j * W);
      } else {
#pragma unroll
        for (int e = 0; e < W; ++e) out[j * W + e] = 0.f;
      }
    }
  } else {
#pragma unroll
    for (int e = 0; e < E; ++e) out[e] = (d0 + e < D) ? toFloat<T>(row[d0 + e]) : 0.f;
  }
}

struct DecodeArgs {
  const float* query;
  float* output;
  const void* pool;
  const int* blockTable;
  const int* pairs;
  const int* itemStart;
  const Schedule* schedule;
  float* partialAcc;  // [maxItems][subgroups][8][D]
  float* partialMaxSum;  // [maxItems][subgroups][8][2]
  int pairCount;
  int kvHeadCount;
  int groupSize;
  int subgroups;
  int headDim;
  int blockSize;
  float scaleLog2;  // scale * log2(e)
  bool vectorized;  // 16-byte loads are aligned (headDim a multiple of the vector width)
};

template <typename T, int GT, int E>
__global__ void __launch_bounds__(kThreads, 2) decodeKernel(DecodeArgs args) {
  const int item = blockIdx.x;
  const int itemCount = args.schedule->itemCount;
  if (item >= itemCount) return;
  const int D = args.headDim;
  const int subgroup = blockIdx.y;

  // The pair owning this item: the largest p with itemStart[p] <= item.
  int low = 0;
  int high = args.pairCount - 1;
  while (low < high) {
    const int mid = (low + high + 1) >> 1;
    if (args.itemStart[mid] <= item) low = mid; else high = mid - 1;
  }
  const int pair = low;
  const int chunkIndex = item - args.itemStart[pair];
  const int chunkCount = args.itemStart[pair + 1] - args.itemStart[pair];
  const int queryRow = args.pairs[pair * 4 + 0];
  const int kvHead = args.pairs[pair * 4 + 1];
  const int kvLength = max(args.pairs[pair * 4 + 2], 0);
  const int tableOffset = args.pairs[pair * 4 + 3];
  const int chunk = args.schedule->chunkTokens;
  const int tokenBegin = chunkIndex * chunk;
  const int tokenEnd = min(kvLength, tokenBegin + chunk);
  const int firstHead = subgroup * 8;
  const int headCount = min(GT, args.groupSize - firstHead);
  const long long queryBase =
      ((static_cast<long long>(queryRow) * args.kvHeadCount + kvHead) * args.groupSize + firstHead) * D;

  extern __shared__ __align__(16) unsigned char sharedBytes[];
  long long* sRow = reinterpret_cast<long long*>(sharedBytes);        // [kSubChunk]
  float* sQuery = reinterpret_cast<float*>(sRow + kSubChunk);          // [GT][D]
  float* sAcc = sQuery + GT * D;                                       // [GT][D]
  float* sScores = sAcc + GT * D;                                      // [GT][kSubChunk]
  __shared__ float sMax[GT], sSum[GT], sRescale[GT];

  for (int i = threadIdx.x; i < GT * D; i += kThreads) {
    const int g = i / D;
    sQuery[i] = g < headCount ? args.query[queryBase + i] * args.scaleLog2 : 0.f;
    sAcc[i] = 0.f;
  }
  if (threadIdx.x < GT) {
    sMax[threadIdx.x] = -INFINITY;
    sSum[threadIdx.x] = 0.f;
  }

  const int lanesNeeded = (D + E - 1) / E;
  int L = 1;
  while (L < lanesNeeded) L <<= 1;
  const int lane = threadIdx.x & (L - 1);
  const int tokenGroup = threadIdx.x / L;
  const int tokenGroups = kThreads / L;
  const int d0 = lane * E;
  const bool laneActive = d0 < D;
  const int warp = threadIdx.x >> 5;
  const int laneInWarp = threadIdx.x & 31;
  const T* pool = static_cast<const T*>(args.pool);
  const long long valueOffset = static_cast<long long>(args.blockSize) * D;

  for (int subBegin = tokenBegin; subBegin < tokenEnd; subBegin += kSubChunk) {
    const int n = min(kSubChunk, tokenEnd - subBegin);
    __syncthreads();  // previous sub-chunk done with sRow / sScores; initialisation visible
    if (threadIdx.x < n) {
      const int t = subBegin + threadIdx.x;
      const int block = args.blockTable[tableOffset + t / args.blockSize];
      sRow[threadIdx.x] = (static_cast<long long>(block) * 2 * args.blockSize + t % args.blockSize) * D;
    }
    __syncthreads();

    // Scores: each group of L lanes takes one token; each lane holds E dims of all GT queries.
    {
      float q[GT][E];
#pragma unroll
      for (int g = 0; g < GT; ++g)
#pragma unroll
        for (int e = 0; e < E; ++e) q[g][e] = (laneActive && d0 + e < D) ? sQuery[g * D + d0 + e] : 0.f;

      for (int base = 0; base < n; base += tokenGroups * kUnroll) {
        float k[kUnroll][E];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int index = base + u * tokenGroups + tokenGroup;
          if (index < n && laneActive) {
            loadRow<T, E>(pool + sRow[index], d0, D, args.vectorized, k[u]);
          } else {
#pragma unroll
            for (int e = 0; e < E; ++e) k[u][e] = 0.f;
          }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int index = base + u * tokenGroups + tokenGroup;
          float s[GT];
#pragma unroll
          for (int g = 0; g < GT; ++g) {
            float dot = 0.f;
#pragma unroll
            for (int e = 0; e < E; ++e) dot = fmaf(q[g][e], k[u][e], dot);
            s[g] = dot;
          }
          if (L >= GT) {
            // Reduce-scatter butterfly: log2(GT) halving steps leave one head per lane.
            int offset = L >> 1;
            int head = 0;
#pragma unroll
            for (int count = GT; count > 1; count >>= 1) {
              const bool upper = (lane & offset) != 0;
#pragma unroll
              for (int i = 0; i < count / 2; ++i) {
                const float keep = upper ? s[i + count / 2] : s[i];
                const float send = upper ? s[i] : s[i + count / 2];
                s[i] = keep + __shfl_xor_sync(0xffffffffu, send, offset);
              }
              if (upper) head += count / 2;
              offset >>= 1;
            }
            for (; offset > 0; offset >>= 1) s[0] += __shfl_xor_sync(0xffffffffu, s[0], offset);
            if (index < n && (lane & (L / GT - 1)) == 0) sScores[head * kSubChunk + index] = s[0];
          } else {
#pragma unroll
            for (int g = 0; g < GT; ++g)
              for (int offset = L >> 1; offset > 0; offset >>= 1)
                s[g] += __shfl_xor_sync(0xffffffffu, s[g], offset);
            if (index < n && lane == 0) {
#pragma unroll
              for (int g = 0; g < GT; ++g) sScores[g * kSubChunk + index] = s[g];
            }
          }
        }
      }
    }
    __syncthreads();

    // Online softmax update, one warp per head.
    for (int g = warp; g < GT; g += kThreads / 32) {
      float localMax = -INFINITY;
      for (int i = laneInWarp; i < n; i += 32) localMax = fmaxf(localMax, sScores[g * kSubChunk + i]);
      for (int offset = 16; offset > 0; offset >>= 1)
        localMax = fmaxf(localMax, __shfl_xor_sync(0xffffffffu, localMax, offset));
      const float previousMax = sMax[g];
      const float newMax = fmaxf(previousMax, localMax);
      float localSum = 0.f;
      for (int i = laneInWarp; i < n; i += 32) {
        const float p = exp2f(sScores[g * kSubChunk + i] - newMax);
        sScores[g * kSubChunk + i] = p;
        localSum += p;
      }
      for (int offset = 16; offset > 0; offset >>= 1) localSum += __shfl_xor_sync(0xffffffffu, localSum, offset);
      if (laneInWarp == 0) {
        const float rescale = previousMax == -INFINITY ? 0.f : exp2f(previousMax - newMax);
        sRescale[g] = rescale;
        sSum[g] = sSum[g] * rescale + localSum;
        sMax[g] = newMax;
      }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < GT * D; i += kThreads) sAcc[i] *= sRescale[i / D];
    __syncthreads();

    // Values: the same lane layout, accumulating p * V for every head of the group.
    {
      float acc[GT][E];
#pragma unroll
      for (int g = 0; g < GT; ++g)
#pragma unroll
        for (int e = 0; e < E; ++e) acc[g][e] = 0.f;
      for (int base = 0; base < n; base += tokenGroups * kUnroll) {
        float v[kUnroll][E];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int index = base + u * tokenGroups + tokenGroup;
          if (index < n && laneActive) {
            loadRow<T, E>(pool + sRow[index] + valueOffset, d0, D, args.vectorized, v[u]);
          } else {
#pragma unroll
            for (int e = 0; e < E; ++e) v[u][e] = 0.f;
          }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int index = base + u * tokenGroups + tokenGroup;
          if (index < n) {
#pragma unroll
            for (int g = 0; g < GT; ++g) {
              const float p = sScores[g * kSubChunk + index];
#pragma unroll
              for (int e = 0; e < E; ++e) acc[g][e] = fmaf(p, v[u][e], acc[g][e]);
            }
          }
        }
      }
      // Sum the token groups of this warp, then add the warp's total into shared memory.
#pragma unroll
      for (int g = 0; g < GT; ++g)
#pragma unroll
        for (int e = 0; e < E; ++e)
          for (int offset = L; offset < 32; offset <<= 1)
            acc[g][e] += __shfl_xor_sync(0xffffffffu, acc[g][e], offset);
      if (laneInWarp < L && laneActive) {
#pragma unroll
        for (int g = 0; g < GT; ++g)
#pragma unroll
          for (int e = 0; e < E; ++e)
            if (d0 + e < D) atomicAdd(&sAcc[g * D + d0 + e], acc[g][e]);
      }
    }
  }
  __syncthreads();

  if (chunkCount == 1) {
    for (int i = threadIdx.x; i < headCount * D; i += kThreads) {
      const float sum = sSum[i / D];
      args.output[queryBase + i] = sum > 0.f ? sAcc[i] / sum : 0.f;
    }
  } else {
    const long long slot = static_cast<long long>(item) * args.subgroups + subgroup;
    float* partial = args.partialAcc + slot * 8 * D;
    for (int i = threadIdx.x; i < headCount * D; i += kThreads) partial[i] = sAcc[i];
    if (threadIdx.x < headCount) {
      args.partialMaxSum[(slot * 8 + threadIdx.x) * 2 + 0] = sMax[threadIdx.x];
      args.partialMaxSum[(slot * 8 + threadIdx.x) * 2 + 1] = sSum[threadIdx.x];
    }
  }
}

__global__ void combineKernel(DecodeArgs args) {
  const int pair = blockIdx.x;
  const int subgroup = blockIdx.y;
  const int firstItem = args.itemStart[pair];
  const int chunkCount = args.itemStart[pair + 1] - firstItem;
  if (chunkCount <= 1) return;
  const int D = args.headDim;
  const int queryRow = args.pairs[pair * 4 + 0];
  const int kvHead = args.pairs[pair * 4 + 1];
  const int firstHead = subgroup * 8;
  const int headCount = min(8, args.groupSize - firstHead);
  const long long queryBase =
      ((static_cast<long long>(queryRow) * args.kvHeadCount + kvHead) * args.groupSize + firstHead) * D;
  for (int i = threadIdx.x; i < headCount * D; i += blockDim.x) {
    const int g = i / D;
    float maximum = -INFINITY;
    for (int c = 0; c < chunkCount; ++c) {
      const long long slot = static_cast<long long>(firstItem + c) * args.subgroups + subgroup;
      maximum = fmaxf(maximum, args.partialMaxSum[(slot * 8 + g) * 2]);
    }
    float numerator = 0.f;
    float denominator = 0.f;
    for (int c = 0; c < chunkCount; ++c) {
      const long long slot = static_cast<long long>(firstItem + c) * args.subgroups + subgroup;
      const float chunkMax = args.partialMaxSum[(slot * 8 + g) * 2];
      const float weight = chunkMax == -INFINITY ? 0.f : exp2f(chunkMax - maximum);
      numerator += weight * args.partialAcc[slot * 8 * D + i];
      denominator += weight * args.partialMaxSum[(slot * 8 + g) * 2 + 1];
    }
    args.output[queryBase + i] = denominator > 0.f ? numerator / denominator : 0.f;
  }
}

template <typename T, int GT, int E>
void launchDecode(const DecodeArgs& args, int maxItems, size_t sharedBytes, cudaStream_t stream) {
  auto kernel = decodeKernel<T, GT, E>;
  checkCuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(sharedBytes)),
            "cudaFuncSetAttribute(ragged-decode-attention)");
  kernel<<<dim3(maxItems, args.subgroups), kThreads, sharedBytes, stream>>>(args);
  checkLaunch("ragged-decode-attention kernel");
}

template <typename T, int E>
void dispatchGroup(const DecodeArgs& args, int maxItems, size_t sharedPerHead, size_t sharedFixed,
                   cudaStream_t stream) {
  const int group = min(args.groupSize, 8);
  if (group <= 1) launchDecode<T, 1, E>(args, maxItems, sharedFixed + sharedPerHead * 1, stream);
  else if (group <= 2) launchDecode<T, 2, E>(args, maxItems, sharedFixed + sharedPerHead * 2, stream);
  else if (group <= 4) launchDecode<T, 4, E>(args, maxItems, sharedFixed + sharedPerHead * 4, stream);
  else launchDecode<T, 8, E>(args, maxItems, sharedFixed + sharedPerHead * 8, stream);
}

template <typename T>
void dispatchWidth(DecodeArgs args, int maxItems, bool aligned, cudaStream_t stream) {
  constexpr int W = VectorWidth<T>::value;
  const int D = args.headDim;
  const size_t sharedPerHead = sizeof(float) * (2 * static_cast<size_t>(D) + kSubChunk);
  const size_t sharedFixed = sizeof(long long) * kSubChunk;
  args.vectorized = aligned && D % W == 0;
  if ((D + W - 1) / W <= 32) dispatchGroup<T, W>(args, maxItems, sharedPerHead, sharedFixed, stream);
  else dispatchGroup<T, 2 * W>(args, maxItems, sharedPerHead, sharedFixed, stream);
}

}  // namespace

size_t raggedDecodeAttentionWorkspaceBytes(const RaggedDecodeAttentionParams& params) {
  const int subgroups = (params.groupSize + 7) / 8;
  const long long maxItems = static_cast<long long>(params.pairCount) + params.targetItems;
  size_t bytes = 256;  // schedule
  bytes += ((static_cast<size_t>(params.pairCount) + 1) * sizeof(int) + 255) / 256 * 256;
  bytes += static_cast<size_t>(maxItems) * subgroups * 8 * params.headDim * sizeof(float);
  bytes += static_cast<size_t>(maxItems) * subgroups * 8 * 2 * sizeof(float);
  return bytes;
}

int maxRaggedDecodeHeadDim(DType poolDType) { return poolDType == DType::F32 ? 256 : 512; }

void raggedDecodeAttention(const RaggedDecodeAttentionParams& params, void* workspace, cudaStream_t stream) {
  if (params.pairCount <= 0) return;
  if (params.headDim > maxRaggedDecodeHeadDim(params.poolDType))
    throw std::invalid_argument("ragged-decode-attention: headDim " + std::to_string(params.headDim) +
                                " exceeds the largest supported (" +
                                std::to_string(maxRaggedDecodeHeadDim(params.poolDType)) + ")");
  const int subgroups = (params.groupSize + 7) / 8;
  const int maxItems = params.pairCount + params.targetItems;
  unsigned char* cursor = static_cast<unsigned char*>(workspace);
  Schedule* schedule = reinterpret_cast<Schedule*>(cursor);
  cursor += 256;
  int* itemStart = reinterpret_cast<int*>(cursor);
  cursor += ((static_cast<size_t>(params.pairCount) + 1) * sizeof(int) + 255) / 256 * 256;
  float* partialAcc = reinterpret_cast<float*>(cursor);
  cursor += static_cast<size_t>(maxItems) * subgroups * 8 * params.headDim * sizeof(float);
  float* partialMaxSum = reinterpret_cast<float*>(cursor);

  scheduleKernel<<<1, kScheduleThreads, 0, stream>>>(params.pairs, params.pairCount, params.targetItems,
                                                      params.minChunkTokens, itemStart, schedule);
  checkLaunch("ragged-decode-attention schedule kernel");

  DecodeArgs args{};
  args.query = params.query;
  args.output = params.output;
  args.pool = params.pool;
  args.blockTable = params.blockTable;
  args.pairs = params.pairs;
  args.itemStart = itemStart;
  args.schedule = schedule;
  args.partialAcc = partialAcc;
  args.partialMaxSum = partialMaxSum;
  args.pairCount = params.pairCount;
  args.kvHeadCount = params.kvHeadCount;
  args.groupSize = params.groupSize;
  args.subgroups = subgroups;
  args.headDim = params.headDim;
  args.blockSize = params.blockSize;
  args.scaleLog2 = params.scale * kLog2e;

  const bool aligned = (reinterpret_cast<uintptr_t>(params.pool) % 16) == 0;
  switch (params.poolDType) {
    case DType::F32: dispatchWidth<float>(args, maxItems, aligned, stream); break;
    case DType::F16: dispatchWidth<__half>(args, maxItems, aligned, stream); break;
    case DType::BF16: dispatchWidth<__nv_bfloat16>(args, maxItems, aligned, stream); break;
    default: throw std::invalid_argument("ragged-decode-attention: pool dtype must be f32, f16 or bf16");
  }
  combineKernel<<<dim3(params.pairCount, subgroups), 128, 0, stream>>>(args);
  checkLaunch("ragged-decode-attention combine kernel");
}

}  // namespace fairkv
