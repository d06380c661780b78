// rope (Su et al., RoFormer 2021), in place, from the precomputed cos/sin table, in the 'adjacent'
// (llama2.c / GGUF) or 'half-split' (Hugging Face) pair layout.
#include "../common.h"
#include "kernels.h"

namespace fairkv {
namespace {
__global__ void ropeKernel(float* __restrict__ data, const int* __restrict__ positions, const float* __restrict__ table,
                           int rowCount, int headCount, int headDim, bool halfSplit) {
  const int half = headDim / 2;
  const long long total = static_cast<long long>(rowCount) * headCount * half;
  for (long long index = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; index < total;
       index += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int i = static_cast<int>(index % half);
    const long long rowHead = index / half;
    const int row = static_cast<int>(rowHead / headCount);
    const long long position = positions[row];
    const float c = table[position * headDim + i];
    const float s = table[position * headDim + half + i];
    float* head = data + rowHead * headDim;
    const int xi = halfSplit ? i : 2 * i;
    const int yi = halfSplit ? i + half : 2 * i + 1;
    const float x = head[xi];
    const float y = head[yi];
    head[xi] = x * c - y * s;
    head[yi] = x * s + y * c;
  }
}
}  // namespace

void rope(const RopeParams& params, cudaStream_t stream) {
  const long long total = static_cast<long long>(params.rowCount) * params.headCount * (params.headDim / 2);
  if (total <= 0) return;
  const unsigned int blocks = min(ceilDiv(total, 256), 65535u);
  ropeKernel<<<blocks, 256, 0, stream>>>(params.data, params.positions, params.table, params.rowCount,
                                         params.headCount, params.headDim, params.halfSplit);
  checkLaunch("rope kernel");
}
}  // namespace fairkv
