// rms-norm (Zhang & Sennrich 2019, as in LLaMA), fused: one block per row computes the mean square
// and writes input / sqrt(mean + epsilon) * weight in one pass over the row. With an addend, the
// residual add comes first in the same kernel: input += addend (written back), then the norm of the sum.
#include <cub/block/block_reduce.cuh>

#include "../common.h"
#include "dispatch.cuh"
#include "dtype-convert.cuh"
#include "kernels.h"

namespace fairkv {
namespace {
constexpr int kThreads = 256;
template <typename T>
__global__ void rmsNormKernel(float* __restrict__ input, const float* __restrict__ addend, const T* __restrict__ weight,
                              float* __restrict__ output, int size, float epsilon) {
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
}  // namespace

void rmsNorm(const RmsNormParams& params, cudaStream_t stream) {
  if (params.rowCount <= 0) return;
  withStoredType(params.weightDType, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    rmsNormKernel<T><<<params.rowCount, kThreads, 0, stream>>>(params.input, params.addend,
                                                              static_cast<const T*>(params.weight), params.output,
                                                              params.size, params.epsilon);
  });
  checkLaunch("rms-norm kernel");
}
}  // namespace fairkv
