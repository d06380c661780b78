// kv-append: writes new K and V rows (f32 activations) into the paged pool (layout in
// packages/kernels/src/kv-layout.ts), rounding to the pool dtype with round-to-nearest-even.
#include "../common.h"
#include "dispatch.cuh"
#include "dtype-convert.cuh"
#include "kernels.h"

namespace fairkv {
namespace {
template <typename T>
__global__ void kvAppendKernel(KvAppendParams p) {
  const int entry = blockIdx.x;
  const int sourceRow = p.entries[entry * 4 + 0];
  const int kvHead = p.entries[entry * 4 + 1];
  const int position = p.entries[entry * 4 + 2];
  const int tableOffset = p.entries[entry * 4 + 3];
  const int D = p.kv.headDim;
  const int blockSize = p.kv.blockSize;
  const long long block = p.kv.blockTable[tableOffset + position / blockSize];
  const long long keyOffset = (block * 2 * blockSize + position % blockSize) * D;
  const long long valueOffset = keyOffset + static_cast<long long>(blockSize) * D;
  const long long sourceOffset = (static_cast<long long>(sourceRow) * p.kvHeadCount + kvHead) * D;
  T* pool = static_cast<T*>(p.kv.pool);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    pool[keyOffset + d] = fromFloat<T>(p.key[sourceOffset + d]);
    pool[valueOffset + d] = fromFloat<T>(p.value[sourceOffset + d]);
  }
}
}  // namespace

void kvAppend(const KvAppendParams& params, cudaStream_t stream) {
  if (params.entryCount <= 0) return;
  withStoredType(params.kv.poolDType, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    kvAppendKernel<T><<<params.entryCount, 128, 0, stream>>>(params);
  });
  checkLaunch("kv-append kernel");
}
}  // namespace fairkv
