// Decode matmul on tensor cores (and the column split of fused projections): output = input x weight^T for up to kMatmulTensorCoreRows rows with
// f16/bf16 weights in nn.Linear layout [outer][inner]. The backend runs it where cuBLAS is missing, and
// for projections split into outputs of unequal widths up to 32 rows (it writes them in place); cuBLAS
// was faster from 16 rows and within 9% either way at 1 row, cold L2 (bench/cuda-matmul/NOTES.md). Bandwidth-bound on the weight, which is read
// exactly once: each block owns 128 outputs (8 warps x 16, the M dimension of mma.m16n8k16) and streams
// their weight rows through a 3-stage cp.async pipeline of 64-element slices, together with the same
// slice of every input row (the N dimension, rows padded to a multiple of 8 with zeros). The f32 input
// is first rounded to the weight's dtype (as a cuBLAS call with one operand type does); products
// accumulate in f32.
//
// Few output tiles (small projections, or fewer tiles than two per SM) split the inner dimension over
// the blocks of a thread-block cluster (Hopper, up to 8 blocks): each block leaves its f32 partial tile
// in its shared memory, and after a cluster barrier every block sums one slice of the tile over all the
// blocks' partials through distributed shared memory, in block order, so the result does not depend on
// timing and no partial goes through global memory. Before Hopper there is no split. Shared memory rows
// are 128 bytes; 16-byte units are XOR-swizzled by row so ldmatrix reads are conflict-free.
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <type_traits>

#include "../common.h"
#include "dispatch.cuh"
#include "kernels.h"
#include "tensor-core.cuh"

namespace fairkv {
namespace {
constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kTileOutputs = kWarps * 16;
constexpr int kStageUnits = 8;  // 16-byte units of one row per stage: 64 elements
constexpr int kStages = 3;
constexpr int kWeightStageBytes = kTileOutputs * kStageUnits * 16;
/** Largest portable cluster: blocks one tile's inner dimension is split over. */
constexpr int kMaxSplits = 8;

struct TensorCoreArgs {
  const unsigned char* weight;
  const unsigned char* input;  // rounded to the weight dtype, [rows][inner]
  MatmulOutputs outputs;
  int rows, inner, outer, splits, stageCount;
};

__device__ __forceinline__ int swizzle(int row, int unit) { return unit ^ (row & 7); }

/** Writes output column `column` of row `row` into the segment that holds it (kMatmulMaxOutputs = 3). */
__device__ __forceinline__ void store(const MatmulOutputs& outputs, int row, int column, float value) {
  float* data = outputs.data[0];
  int width = outputs.widths[0];
  if (outputs.count > 1 && column >= width) {
    column -= width;
    data = outputs.data[1];
    width = outputs.widths[1];
    if (outputs.count > 2 && column >= width) {
      column -= width;
      data = outputs.data[2];
      width = outputs.widths[2];
    }
  }
  data[static_cast<long long>(row) * width + column] = value;
}

template <typename T, int NT>
__global__ void __launch_bounds__(kThreads) matmulTensorCoreKernel(TensorCoreArgs a) {
  constexpr int kPaddedRows = NT * 8;
  constexpr int kStageBytes = kWeightStageBytes + kPaddedRows * kStageUnits * 16;
  extern __shared__ __align__(128) unsigned char shared[];
  const int tile = blockIdx.x;
  const int split = blockIdx.y;
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int firstOutput = tile * kTileOutputs;
  const int stageBegin = static_cast<int>(static_cast<long long>(split) * a.stageCount / a.splits);
  const int count = static_cast<int>(static_cast<long long>(split + 1) * a.stageCount / a.splits) - stageBegin;
  const long long rowBytes = static_cast<long long>(a.inner) * 2;
  const int rowUnits = a.inner / 8;

  auto load = [&](int stage, int buffer) {
    unsigned char* base = shared + buffer * kStageBytes;
    const int firstUnit = (stageBegin + stage) * kStageUnits;
#pragma unroll
    for (int i = threadIdx.x; i < kTileOutputs * kStageUnits; i += kThreads) {
      const int row = i >> 3;
      const int unit = i & 7;
      const bool valid = firstOutput + row < a.outer && firstUnit + unit < rowUnits;
      const unsigned char* source =
          valid ? a.weight + (firstOutput + row) * rowBytes + (firstUnit + unit) * 16LL : a.weight;
      copyAsync16(base + row * 128 + swizzle(row, unit) * 16, source, valid);
    }
    unsigned char* inputs = base + kWeightStageBytes;
#pragma unroll
    for (int i = threadIdx.x; i < kPaddedRows * kStageUnits; i += kThreads) {
      const int row = i >> 3;
      const int unit = i & 7;
      const bool valid = row < a.rows && firstUnit + unit < rowUnits;
      const unsigned char* source = valid ? a.input + row * rowBytes + (firstUnit + unit) * 16LL : a.input;
      copyAsync16(inputs + row * 128 + swizzle(row, unit) * 16, source, valid);
    }
  };

  float acc[NT][4];
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[n][e] = 0.f;

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < count) load(s, s);
    commitAsync();
  }
  for (int t = 0; t < count; ++t) {
    waitAsync<kStages - 2>();
    __syncthreads();  // stage t landed for every thread; stage t - 1's buffer is free
    if (t + kStages - 1 < count) load(t + kStages - 1, (t + kStages - 1) % kStages);
    commitAsync();
    const unsigned char* base = shared + (t % kStages) * kStageBytes;
    const unsigned char* inputs = base + kWeightStageBytes;
    const int matrix = lane >> 3;
#pragma unroll
    for (int k = 0; k < kStageUnits / 2; ++k) {
      unsigned weights[4];
      {
        const int row = warp * 16 + (lane & 7) + ((matrix & 1) << 3);
        loadMatrixX4(weights, base + row * 128 + swizzle(row, 2 * k + (matrix >> 1)) * 16);
      }
      if constexpr (NT == 1) {
        unsigned b[2];
        const int row = lane & 7;
        loadMatrixX2(b, inputs + row * 128 + swizzle(row, 2 * k + (matrix & 1)) * 16);
        MmaOps<T>::mma(acc[0], weights, b[0], b[1]);
      } else {
#pragma unroll
        for (int n = 0; n < NT; n += 2) {
          unsigned b[4];
          const int row = n * 8 + (lane & 7) + ((matrix >> 1) << 3);
          loadMatrixX4(b, inputs + row * 128 + swizzle(row, 2 * k + (matrix & 1)) * 16);
          MmaOps<T>::mma(acc[n], weights, b[0], b[1]);
          MmaOps<T>::mma(acc[n + 1], weights, b[2], b[3]);
        }
      }
    }
  }
  waitAsync<0>();

  // acc[n][e]: output warp * 16 + lane / 4 (+ 8 for e >= 2) of the tile, row n * 8 + 2 (lane % 4) + e % 2
  const int localOutput = warp * 16 + (lane >> 2);
  const int localRow = 2 * (lane & 3);
  if (a.splits == 1) {
#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = n * 8 + localRow + (e & 1);
        const int output = firstOutput + localOutput + (e >> 1) * 8;
        if (row < a.rows && output < a.outer) store(a.outputs, row, output, acc[n][e]);
      }
    return;
  }
#if __CUDA_ARCH__ >= 900
  // split: this block's partial tile [padded rows][128 outputs] in its (now idle) stage buffers, then
  // block r of the cluster sums slice r of every block's partial, blocks in order
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  __syncthreads();
  float* partial = reinterpret_cast<float*>(shared);
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      partial[(n * 8 + localRow + (e & 1)) * kTileOutputs + localOutput + (e >> 1) * 8] = acc[n][e];
  cluster.sync();
  const int elements = a.rows * kTileOutputs;
  const int slice = (elements + a.splits - 1) / a.splits;
  const int begin = split * slice;
  const int end = min(elements, begin + slice);
  for (int i = begin + threadIdx.x; i < end; i += kThreads) {
    const int output = firstOutput + i % kTileOutputs;
    if (output >= a.outer) continue;
    float sum = 0.f;
    for (int block = 0; block < a.splits; ++block) sum += cluster.map_shared_rank(partial, block)[i];
    store(a.outputs, i / kTileOutputs, output, sum);
  }
  cluster.sync();  // keep every partial alive until the others have read it
#else
  __trap();  // the host splits only on Hopper and newer
#endif
}

__global__ void splitColumnsKernel(const float* __restrict__ source, long long count, int total, MatmulOutputs outputs) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    store(outputs, static_cast<int>(i / total), static_cast<int>(i % total), source[i]);
  }
}

int paddedTiles(int rows) { return rows <= 8 ? 1 : rows <= 16 ? 2 : rows <= 32 ? 4 : rows <= 64 ? 8 : 16; }

struct Geometry {
  int tiles, splits, stageCount, nt;
  size_t inputBytes;
};

Geometry geometryOf(const MatmulParams& p, int multiprocessorCount, bool clusters) {
  Geometry g{};
  g.nt = paddedTiles(p.rowCount);
  g.tiles = static_cast<int>(ceilDiv(p.outerSize, kTileOutputs));
  g.stageCount = static_cast<int>(ceilDiv(p.innerSize, kStageUnits * 8));
  // two blocks per SM fit (at most 96 KB of stages each): split the inner dimension until at most that
  // many blocks run at once, keeping at least two stages per block
  const int resident = 2 * multiprocessorCount;
  g.splits = clusters ? std::max(1, std::min({resident / g.tiles, kMaxSplits, g.stageCount / 2})) : 1;
  g.inputBytes = static_cast<size_t>(p.rowCount) * p.innerSize * 2;
  return g;
}

template <typename T, int NT>
void launch(const TensorCoreArgs& args, const Geometry& g, cudaStream_t stream) {
  constexpr int kSharedBytes = kStages * (kWeightStageBytes + NT * 8 * kStageUnits * 16);
  // the attribute is per device: set it once per device this thread launches on
  static thread_local unsigned long long configuredDevices = 0;
  int device = 0;
  checkCuda(cudaGetDevice(&device), "cudaGetDevice");
  const unsigned long long bit = 1ULL << (device & 63);
  if ((configuredDevices & bit) == 0) {
    checkCuda(cudaFuncSetAttribute(matmulTensorCoreKernel<T, NT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   kSharedBytes),
              "cudaFuncSetAttribute(matmul tensor-core kernel)");
    configuredDevices |= bit;
  }
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(g.tiles, g.splits);
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = kSharedBytes;
  config.stream = stream;
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = 1;
  cluster.val.clusterDim.y = g.splits;
  cluster.val.clusterDim.z = 1;
  config.attrs = &cluster;
  config.numAttrs = g.splits > 1 ? 1 : 0;
  checkCuda(cudaLaunchKernelEx(&config, matmulTensorCoreKernel<T, NT>, args), "cudaLaunchKernelEx(matmul tensor-core kernel)");
}
}  // namespace

void splitColumns(const float* source, int rows, int total, const MatmulOutputs& outputs, cudaStream_t stream) {
  const long long count = static_cast<long long>(rows) * total;
  if (count <= 0) return;
  const unsigned int blocks = static_cast<unsigned int>(std::min<long long>((count + 255) / 256, 4096));
  splitColumnsKernel<<<blocks, 256, 0, stream>>>(source, count, total, outputs);
  checkLaunch("split columns kernel");
}

bool matmulTensorCoreSupports(const MatmulParams& p) {
  return (p.weightDType == DType::BF16 || p.weightDType == DType::F16) && p.rowCount >= 1 &&
         p.rowCount <= kMatmulTensorCoreRows && p.innerSize % 8 == 0 &&
         reinterpret_cast<uintptr_t>(p.weight) % 16 == 0;
}

size_t matmulTensorCoreWorkspaceBytes(const MatmulParams& p) { return static_cast<size_t>(p.rowCount) * p.innerSize * 2; }

void matmulTensorCore(const MatmulParams& p, const MatmulOutputs& outputs, void* workspace, int multiprocessorCount,
                      bool clusters, cudaStream_t stream) {
  if (p.rowCount <= 0 || p.outerSize <= 0) return;
  if (!matmulTensorCoreSupports(p)) throw std::invalid_argument("matmulTensorCore: unsupported shape or dtype");
  const Geometry g = geometryOf(p, multiprocessorCount, clusters);
  auto* bytes = static_cast<unsigned char*>(workspace);
  convertFloatTo(p.input, bytes, p.weightDType, static_cast<long long>(p.rowCount) * p.innerSize, stream);
  const TensorCoreArgs args{static_cast<const unsigned char*>(p.weight),
                            bytes,
                            outputs,
                            p.rowCount,
                            p.innerSize,
                            p.outerSize,
                            g.splits,
                            g.stageCount};
  auto dispatch = [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    switch (g.nt) {
      case 1: launch<T, 1>(args, g, stream); break;
      case 2: launch<T, 2>(args, g, stream); break;
      case 4: launch<T, 4>(args, g, stream); break;
      case 8: launch<T, 8>(args, g, stream); break;
      default: launch<T, 16>(args, g, stream); break;
    }
  };
  if (p.weightDType == DType::BF16)
    dispatch(static_cast<__nv_bfloat16*>(nullptr));
  else
    dispatch(static_cast<__half*>(nullptr));
  checkLaunch("matmul tensor-core kernel");
}
}  // namespace fairkv
