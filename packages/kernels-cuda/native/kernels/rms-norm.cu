// rms-norm (Zhang & Sennrich 2019, as in LLaMA), fused: one block per row computes the mean square
// and writes input / sqrt(mean + epsilon) * weight in one pass over the row. With an addend, the
// residual add comes first in the same kernel: input += addend (written back), then the norm of the sum.
// Rows of up to 8192 elements (a multiple of 4) are held in registers as float4s: one read of the row,
// every load issued before the reduction (decode rows are few, so the call is latency-bound).
#include <cub/block/block_reduce.cuh>

#include <type_traits>

#include "../common.h"
#include "dispatch.cuh"
#include "dtype-convert.cuh"
#include "kernels.h"
#include "tensor-core.cuh"  // allowDependentLaunch

namespace fairkv {
namespace {
constexpr int kThreads = 256;
template <typename T>
__global__ void rmsNormKernel(float* __restrict__ input, const float* __restrict__ addend, const T* __restrict__ weight,
                              float* __restrict__ output, int size, float epsilon) {
  allowDependentLaunch();  // the matmul after it (a projection of the normalised rows) may start loading its weight
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  __shared__ float inverseRms;
  float* row = input + static_cast<long long>(blockIdx.x) * size;
  float sum = 0.f;
  if (addend != nullptr) {
    // each thread writes back exactly the elements it reads again below: no barrier needed
    const float* add = addend + static_cast<long long>(blockIdx.x) * size;
    for (int i = threadIdx.x; i < size; i += kThreads) {
      const float value = row[i] + add[i];
      row[i] = value;
      sum = fmaf(value, value, sum);
    }
  } else {
    for (int i = threadIdx.x; i < size; i += kThreads) sum = fmaf(row[i], row[i], sum);
  }
  const float total = Reduce(temp).Sum(sum);
  if (threadIdx.x == 0) inverseRms = rsqrtf(total / static_cast<float>(size) + epsilon);
  __syncthreads();
  float* out = output + static_cast<long long>(blockIdx.x) * size;
  for (int i = threadIdx.x; i < size; i += kThreads) out[i] = row[i] * inverseRms * toFloat<T>(weight[i]);
}
/** Four stored values at `p` (4-element aligned) widened to f32. */
template <typename T>
__device__ __forceinline__ float4 load4(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return *reinterpret_cast<const float4*>(p);
  } else {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    const T* v = reinterpret_cast<const T*>(&raw);
    return make_float4(toFloat<T>(v[0]), toFloat<T>(v[1]), toFloat<T>(v[2]), toFloat<T>(v[3]));
  }
}

template <typename T, int V>
__global__ void __launch_bounds__(kThreads) rmsNormRegisterKernel(float* __restrict__ input,
                                                                  const float* __restrict__ addend,
                                                                  const T* __restrict__ weight,
                                                                  float* __restrict__ output, int size,
                                                                  float epsilon) {
  allowDependentLaunch();  // the matmul after it (a projection of the normalised rows) may start loading its weight
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  __shared__ float inverseRms;
  const int vectors = size / 4;
  float4* row = reinterpret_cast<float4*>(input + static_cast<long long>(blockIdx.x) * size);
  const float4* add =
      addend == nullptr ? nullptr : reinterpret_cast<const float4*>(addend + static_cast<long long>(blockIdx.x) * size);
  float4 values[V];
  float sum = 0.f;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int i = threadIdx.x + j * kThreads;
    if (i < vectors) {
      float4 v = row[i];
      if (add != nullptr) {
        const float4 a = add[i];
        v = make_float4(v.x + a.x, v.y + a.y, v.z + a.z, v.w + a.w);
        row[i] = v;
      }
      values[j] = v;
      sum = fmaf(v.x, v.x, fmaf(v.y, v.y, fmaf(v.z, v.z, fmaf(v.w, v.w, sum))));
    }
  }
  const float total = Reduce(temp).Sum(sum);
  if (threadIdx.x == 0) inverseRms = rsqrtf(total / static_cast<float>(size) + epsilon);
  __syncthreads();
  const float scale = inverseRms;
  float4* out = reinterpret_cast<float4*>(output + static_cast<long long>(blockIdx.x) * size);
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int i = threadIdx.x + j * kThreads;
    if (i < vectors) {
      const float4 w = load4<T>(weight + 4 * i);
      const float4 v = values[j];
      out[i] = make_float4(v.x * scale * w.x, v.y * scale * w.y, v.z * scale * w.z, v.w * scale * w.w);
    }
  }
}
}  // namespace

void rmsNorm(const RmsNormParams& params, cudaStream_t stream) {
  if (params.rowCount <= 0) return;
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const int perThread = (params.size / 4 + kThreads - 1) / kThreads;  // float4s each thread holds
  const bool registers = params.size % 4 == 0 && perThread <= 8 && aligned(params.input) && aligned(params.output) &&
                         (params.addend == nullptr || aligned(params.addend)) &&
                         reinterpret_cast<uintptr_t>(params.weight) % 8 == 0;
  withStoredType(params.weightDType, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* weight = static_cast<const T*>(params.weight);
    auto launch = [&](auto kernel) {
      kernel<<<params.rowCount, kThreads, 0, stream>>>(params.input, params.addend, weight, params.output, params.size,
                                                       params.epsilon);
    };
    if (!registers) launch(rmsNormKernel<T>);
    else if (perThread <= 1) launch(rmsNormRegisterKernel<T, 1>);
    else if (perThread <= 2) launch(rmsNormRegisterKernel<T, 2>);
    else if (perThread <= 4) launch(rmsNormRegisterKernel<T, 4>);
    else launch(rmsNormRegisterKernel<T, 8>);
  });
  checkLaunch("rms-norm kernel");
}
}  // namespace fairkv
