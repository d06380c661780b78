// argmax: the index of the largest logit per row, the lowest index among ties.
#include "../common.h"
#include "kernels.h"
#include "sampling.cuh"

namespace fairkv {
namespace {
constexpr int kThreads = 256;
__global__ void argmaxKernel(const float* __restrict__ logits, int* __restrict__ output, int vocabSize) {
  const int index = blockArgmax<kThreads>(logits + static_cast<long long>(blockIdx.x) * vocabSize, vocabSize);
  if (threadIdx.x == 0) output[blockIdx.x] = index;
}
}  // namespace

void argmax(const float* logits, int* output, int rowCount, int vocabSize, cudaStream_t stream) {
  if (rowCount <= 0) return;
  argmaxKernel<<<rowCount, kThreads, 0, stream>>>(logits, output, vocabSize);
  checkLaunch("argmax kernel");
}
}  // namespace fairkv
