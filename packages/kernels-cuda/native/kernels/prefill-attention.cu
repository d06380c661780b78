// prefill-attention: causal GQA self-attention over one prompt that also returns the
// observation-window scores (the last `windowSize` query rows of the softmax, per query head) that
// SnapKV / Ada-KV / HeadKV style compression policies consume. One block per (query token, query
// head): pass 1 finds the softmax max and sum with an online reduction, pass 2 recomputes the
// probabilities tile by tile, writes window rows, and accumulates p * V. Exact (f32), not tiled for
// tensor cores: prefill is not the decode-bound path this package optimises.
#include "../common.h"
#include "kernels.h"

namespace fairkv {
namespace {
constexpr int kThreads = 128;

__device__ __forceinline__ float dotRow(const float* __restrict__ a, const float* __restrict__ b, int n) {
  float sum = 0.f;
  for (int i = 0; i < n; ++i) sum = fmaf(a[i], b[i], sum);
  return sum;
}

__global__ void __launch_bounds__(kThreads) prefillAttentionKernel(PrefillAttentionParams p) {
  const int t = blockIdx.x;
  const int head = blockIdx.y;
  const int D = p.headDim;
  const int groupSize = p.queryHeadCount / p.kvHeadCount;
  const int kvHead = head / groupSize;
  extern __shared__ float shared[];
  float* sQuery = shared;         // [D]
  float* sOut = sQuery + D;       // [D]
  float* sProb = sOut + D;        // [kThreads]
  __shared__ float sReduceMax[kThreads], sReduceSum[kThreads];
  __shared__ float sMax, sSum;

  const long long queryOffset = (static_cast<long long>(t) * p.queryHeadCount + head) * D;
  for (int d = threadIdx.x; d < D; d += kThreads) {
    sQuery[d] = p.query[queryOffset + d];
    sOut[d] = 0.f;
  }
  __syncthreads();
  const long long kvStride = static_cast<long long>(p.kvHeadCount) * D;
  const float* keyBase = p.key + static_cast<long long>(kvHead) * D;
  const float* valueBase = p.value + static_cast<long long>(kvHead) * D;

  float localMax = -INFINITY;
  float localSum = 0.f;
  for (int k = threadIdx.x; k <= t; k += kThreads) {
    const float s = p.scale * dotRow(sQuery, keyBase + k * kvStride, D);
    if (s > localMax) {
      localSum = localSum * expf(localMax - s) + 1.f;
      localMax = s;
    } else {
      localSum += expf(s - localMax);
    }
  }
  sReduceMax[threadIdx.x] = localMax;
  sReduceSum[threadIdx.x] = localSum;
  __syncthreads();
  if (threadIdx.x == 0) {
    float maximum = -INFINITY;
    for (int i = 0; i < kThreads; ++i) maximum = fmaxf(maximum, sReduceMax[i]);
    float sum = 0.f;
    for (int i = 0; i < kThreads; ++i)
      if (sReduceMax[i] != -INFINITY) sum += sReduceSum[i] * expf(sReduceMax[i] - maximum);
    sMax = maximum;
    sSum = sum;
  }
  __syncthreads();
  const float maximum = sMax;
  const float inverseSum = 1.f / sSum;
  const int windowRow = t - (p.tokenCount - p.windowSize);
  float* windowOut = (p.windowSize > 0 && windowRow >= 0)
                         ? p.windowScores + (static_cast<long long>(head) * p.windowSize + windowRow) * p.tokenCount
                         : nullptr;

  for (int tile = 0; tile <= t; tile += kThreads) {
    const int k = tile + threadIdx.x;
    float probability = 0.f;
    if (k <= t) probability = expf(p.scale * dotRow(sQuery, keyBase + k * kvStride, D) - maximum) * inverseSum;
    sProb[threadIdx.x] = probability;
    if (windowOut != nullptr && k <= t) windowOut[k] = probability;
    __syncthreads();
    const int count = min(kThreads, t + 1 - tile);
    for (int d = threadIdx.x; d < D; d += kThreads) {
      float acc = sOut[d];
      for (int j = 0; j < count; ++j) acc = fmaf(sProb[j], valueBase[(tile + j) * kvStride + d], acc);
      sOut[d] = acc;
    }
    __syncthreads();
  }
  if (windowOut != nullptr)
    for (int k = t + 1 + threadIdx.x; k < p.tokenCount; k += kThreads) windowOut[k] = 0.f;
  for (int d = threadIdx.x; d < D; d += kThreads) p.output[queryOffset + d] = sOut[d];
}
}  // namespace

void prefillAttention(const PrefillAttentionParams& params, cudaStream_t stream) {
  if (params.tokenCount <= 0 || params.queryHeadCount <= 0) return;
  const size_t shared = sizeof(float) * (2 * static_cast<size_t>(params.headDim) + kThreads);
  if (shared > 48 * 1024)
    checkCuda(cudaFuncSetAttribute(prefillAttentionKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   static_cast<int>(shared)),
              "cudaFuncSetAttribute(prefill-attention)");
  prefillAttentionKernel<<<dim3(params.tokenCount, params.queryHeadCount), kThreads, shared, stream>>>(params);
  checkLaunch("prefill-attention kernel");
}
}  // namespace fairkv
