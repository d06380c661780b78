// matmul for few rows (decode): output = input x weight^T with the weight in nn.Linear layout
// [outer][inner]. Bandwidth-bound on the weight, so each warp streams FEATURES weight rows with
// 16-byte loads, converts to f32 and accumulates every input row in f32; the weight is read once.
// More rows than kMatmulStreamingRows go to cuBLAS (see cublas.cc).
#include "../common.h"
#include "dispatch.cuh"
#include "dtype-convert.cuh"
#include "kernels.h"

namespace fairkv {
namespace {
constexpr int kWarps = 8;
constexpr int kFeatures = 4;

template <typename T, bool Vectorized>
__global__ void __launch_bounds__(kWarps * 32) matmulStreamingKernel(const float* __restrict__ input,
                                                                     const T* __restrict__ weight,
                                                                     float* __restrict__ output, int rowCount,
                                                                     int innerSize, int outerSize) {
  constexpr int W = Vectorized ? VectorWidth<T>::value : 1;
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int firstFeature = (blockIdx.x * kWarps + warp) * kFeatures;
  if (firstFeature >= outerSize) return;
  float acc[kFeatures][kMatmulStreamingRows];
#pragma unroll
  for (int f = 0; f < kFeatures; ++f)
#pragma unroll
    for (int r = 0; r < kMatmulStreamingRows; ++r) acc[f][r] = 0.f;

  for (int i = lane * W; i < innerSize; i += 32 * W) {
    float w[kFeatures][W];
#pragma unroll
    for (int f = 0; f < kFeatures; ++f) {
      const int feature = firstFeature + f;
      const T* row = weight + static_cast<long long>(feature < outerSize ? feature : firstFeature) * innerSize + i;
      if constexpr (Vectorized) {
        unpack16<T>(__ldg(reinterpret_cast<const uint4*>(row)), w[f]);
      } else {
        w[f][0] = toFloat<T>(row[0]);
      }
    }
#pragma unroll
    for (int r = 0; r < kMatmulStreamingRows; ++r) {
      if (r < rowCount) {
        const float* x = input + static_cast<long long>(r) * innerSize + i;
        float xv[W];
#pragma unroll
        for (int e = 0; e < W; ++e) xv[e] = __ldg(x + e);
#pragma unroll
        for (int f = 0; f < kFeatures; ++f)
#pragma unroll
          for (int e = 0; e < W; ++e) acc[f][r] = fmaf(w[f][e], xv[e], acc[f][r]);
      }
    }
  }
#pragma unroll
  for (int f = 0; f < kFeatures; ++f) {
#pragma unroll
    for (int r = 0; r < kMatmulStreamingRows; ++r) {
      if (r < rowCount) {
        float value = acc[f][r];
        for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
        const int feature = firstFeature + f;
        if (lane == 0 && feature < outerSize) output[static_cast<long long>(r) * outerSize + feature] = value;
      }
    }
  }
}
}  // namespace

void matmulStreaming(const MatmulParams& params, cudaStream_t stream) {
  if (params.rowCount <= 0 || params.outerSize <= 0) return;
  if (params.rowCount > kMatmulStreamingRows) throw std::invalid_argument("matmulStreaming: too many rows");
  const unsigned int blocks = ceilDiv(params.outerSize, kWarps * kFeatures);
  withStoredType(params.weightDType, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    constexpr int W = VectorWidth<T>::value;
    const bool vectorized = params.innerSize % W == 0 && reinterpret_cast<uintptr_t>(params.weight) % 16 == 0;
    const T* weight = static_cast<const T*>(params.weight);
    if (vectorized)
      matmulStreamingKernel<T, true><<<blocks, kWarps * 32, 0, stream>>>(params.input, weight, params.output,
                                                                         params.rowCount, params.innerSize,
                                                                         params.outerSize);
    else
      matmulStreamingKernel<T, false><<<blocks, kWarps * 32, 0, stream>>>(params.input, weight, params.output,
                                                                          params.rowCount, params.innerSize,
                                                                          params.outerSize);
  });
  checkLaunch("matmul streaming kernel");
}
}  // namespace fairkv
