// Shared pieces of argmax and top-p sampling: the (value, index) maximum with the lowest index
// among ties, and the PCG hash (Jarzynski & Olano, JCGT 2020) that packages/kernels/src/pcg-hash.ts
// computes bit-identically.
#pragma once

#include <cub/block/block_reduce.cuh>

namespace fairkv {

struct ValueIndex {
  float value;
  int index;
};

struct MaxValueLowestIndex {
  __device__ __forceinline__ ValueIndex operator()(const ValueIndex& a, const ValueIndex& b) const {
    if (a.value > b.value) return a;
    if (b.value > a.value) return b;
    return a.index <= b.index ? a : b;
  }
};

/** Argmax of one row by a whole block of THREADS threads; the result is valid in thread 0. */
template <int THREADS>
__device__ int blockArgmax(const float* __restrict__ row, int count) {
  using Reduce = cub::BlockReduce<ValueIndex, THREADS>;
  __shared__ typename Reduce::TempStorage temp;
  ValueIndex best{-INFINITY, 0x7fffffff};
  for (int v = threadIdx.x; v < count; v += THREADS) {
    const float value = row[v];
    if (value > best.value || best.index == 0x7fffffff) best = ValueIndex{value, v};
  }
  return Reduce(temp).Reduce(best, MaxValueLowestIndex()).index;
}

__host__ __device__ __forceinline__ unsigned int pcgHash(unsigned int input) {
  const unsigned int state = input * 747796405u + 2891336453u;
  const unsigned int word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

}  // namespace fairkv
