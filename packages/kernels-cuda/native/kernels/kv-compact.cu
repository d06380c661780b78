// kv-compact: gathers the kept tokens of each source sequence into fresh destination blocks of the
// paged pool, bit-exact (raw element copies), so the host can return the source blocks to the free
// list: memory is really freed, not masked (unlike kvpress).
#include "../common.h"
#include "kernels.h"

namespace fairkv {
namespace {
template <typename Raw>
__global__ void kvCompactKernel(KvCompactParams p) {
  const int sequence = blockIdx.x;
  const int keptOffset = p.sequences[sequence * 4 + 0];
  const int keptCount = p.sequences[sequence * 4 + 1];
  const int sourceTable = p.sequences[sequence * 4 + 2];
  const int destinationTable = p.sequences[sequence * 4 + 3];
  const int D = p.kv.headDim;
  const int blockSize = p.kv.blockSize;
  const long long valueShift = static_cast<long long>(blockSize) * D;
  Raw* pool = static_cast<Raw*>(p.kv.pool);
  for (int j = blockIdx.y; j < keptCount; j += gridDim.y) {
    const int source = p.keptIndices[keptOffset + j];
    const long long sourceBlock = p.kv.blockTable[sourceTable + source / blockSize];
    const long long destinationBlock = p.kv.blockTable[destinationTable + j / blockSize];
    const long long from = (sourceBlock * 2 * blockSize + source % blockSize) * D;
    const long long to = (destinationBlock * 2 * blockSize + j % blockSize) * D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
      pool[to + d] = pool[from + d];
      pool[to + valueShift + d] = pool[from + valueShift + d];
    }
  }
}
}  // namespace

void kvCompact(const KvCompactParams& params, cudaStream_t stream) {
  if (params.sequenceCount <= 0) return;
  const dim3 grid(params.sequenceCount, 64);
  if (dtypeBytes(params.kv.poolDType) == 4)
    kvCompactKernel<unsigned int><<<grid, 128, 0, stream>>>(params);
  else
    kvCompactKernel<unsigned short><<<grid, 128, 0, stream>>>(params);
  checkLaunch("kv-compact kernel");
}
}  // namespace fairkv
