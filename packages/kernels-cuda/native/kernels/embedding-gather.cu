// embedding-gather: output[r][h] = table[tokens[r]][h] (LLaMA token embedding), stored dtype -> f32.
#include "../common.h"
#include "dispatch.cuh"
#include "dtype-convert.cuh"
#include "kernels.h"

namespace fairkv {
namespace {
// rows stride over gridDim.y (at most 65,535: a prompt or a row gather may have more rows)
template <typename T>
__global__ void embeddingGatherKernel(const T* __restrict__ table, const int* __restrict__ tokens,
                                      float* __restrict__ output, int rowCount, int hiddenSize) {
  for (int row = blockIdx.y; row < rowCount; row += gridDim.y) {
    const long long token = tokens[row];
    for (int h = blockIdx.x * blockDim.x + threadIdx.x; h < hiddenSize; h += gridDim.x * blockDim.x)
      output[static_cast<long long>(row) * hiddenSize + h] = toFloat<T>(table[token * hiddenSize + h]);
  }
}
}  // namespace

void embeddingGather(const EmbeddingGatherParams& params, cudaStream_t stream) {
  if (params.rowCount <= 0) return;
  withStoredType(params.tableDType, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const dim3 grid(min(ceilDiv(params.hiddenSize, 256), 64u), min(params.rowCount, 65535));
    embeddingGatherKernel<T><<<grid, 256, 0, stream>>>(static_cast<const T*>(params.table), params.tokens,
                                                       params.output, params.rowCount, params.hiddenSize);
  });
  checkLaunch("embedding-gather kernel");
}
}  // namespace fairkv
