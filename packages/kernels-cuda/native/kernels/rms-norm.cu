// rms-norm (Zhang & Sennrich 2019, as in LLaMA), fused: one block per row computes the mean square
// and writes input / sqrt(mean + epsilon) * weight in one pass over the row.
#include <cub/block/block_reduce.cuh>

#include "../common.h"
#include "dispatch.cuh"
#include "dtype-convert.cuh"
#include "kernels.h"

namespace fairkv {
namespace {
constexpr int kThreads = 256;
template <typename T>
__global__ void rmsNormKernel(const float* __restrict__ input, const T* __restrict__ weight,
                              float* __restrict__ output, int size, float epsilon) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  __shared__ float inverseRms;
  const float* row = input + static_cast<long long>(blockIdx.x) * size;
  float sum = 0.f;
  for (int i = threadIdx.x; i < size; i += kThreads) sum = fmaf(row[i], row[i], sum);
  const float total = Reduce(temp).Sum(sum);
  if (threadIdx.x == 0) inverseRms = rsqrtf(total / static_cast<float>(size) + epsilon);
  __syncthreads();
  float* out = output + static_cast<long long>(blockIdx.x) * size;
  for (int i = threadIdx.x; i < size; i += kThreads) out[i] = row[i] * inverseRms * toFloat<T>(weight[i]);
}
}  // namespace

void rmsNorm(const RmsNormParams& params, cudaStream_t stream) {
  if (params.rowCount <= 0) return;
  withStoredType(params.weightDType, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    rmsNormKernel<T><<<params.rowCount, kThreads, 0, stream>>>(params.input, static_cast<const T*>(params.weight),
                                                              params.output, params.size, params.epsilon);
  });
  checkLaunch("rms-norm kernel");
}
}  // namespace fairkv
