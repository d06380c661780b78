// matmul for 1..kMatmulGemvRows rows (1..kMatmulGemvRowsF32 with f32 weights; decode at small
// batches): output = input x weight^T with an f16, bf16 or f32 weight in nn.Linear layout [outer][inner]
// and f32 input and output. The step is the weight's stream from DRAM, so the kernel is built around
// keeping it busy:
//  - the f32 input is read as it is (no rounding kernel before, as cuBLAS and the tensor-core kernel need);
//  - each warp streams 2 weight rows (one input row) or 4 (more), 16 bytes per lane per row, 8 loads per
//    lane in registers while it multiplies the previous 8 (double buffering in registers);
//  - the weight's first loads are issued before the kernel waits for the kernel ahead of it
//    (programmatic dependent launch on Hopper: the weight does not depend on it, the input does);
//  - narrow weights split the inner dimension over the warps of a block (Split), so that every call
//    has enough warps in flight, and the block sums the slices in a fixed order;
//  - projections split into several outputs (q | k | v, gate | up) are written in place.
// Accumulation in f32, each output a fixed sum order: the same result on every run.
#include <type_traits>

#include "../common.h"
#include "dispatch.cuh"
#include "dtype-convert.cuh"
#include "kernels.h"
#include "tensor-core.cuh"

namespace fairkv {
namespace {
constexpr int kGemvWarps = 8;
/** Weight rows per warp: 2 for one input row, 4 for more (each input load then serves 4 weight rows). */
template <int M>
constexpr int kGemvFeatures = M == 1 ? 2 : 4;
/** Loop turns of weight loads a lane keeps in flight: 8 16-byte loads per buffer either way. */
template <int M>
constexpr int kGemvBatch = 8 / kGemvFeatures<M>;
/** Weight elements per 16-byte load: 8 of f16/bf16, 4 of f32. */
template <typename T>
constexpr int kGemvElements = 16 / static_cast<int>(sizeof(T));
/** Inner elements one warp covers per loop turn. */
template <typename T>
constexpr int kGemvTurnElements = 32 * kGemvElements<T>;

/** A 16-byte weight load that bypasses L1 (each weight byte is read once) and asks the L2 to fetch 256 bytes. */
__device__ __forceinline__ uint4 loadWeight16(const void* address) {
  uint4 value;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(value.x), "=r"(value.y), "=r"(value.z), "=r"(value.w)
               : "l"(address));
  return value;
}

template <typename T, int M, int Split>
__global__ void __launch_bounds__(kGemvWarps * 32) matmulGemvKernel(const float* __restrict__ input,
                                                                    const T* __restrict__ weight,
                                                                    MatmulOutputs outputs, int innerSize,
                                                                    int outerSize) {
  constexpr int F = kGemvFeatures<M>;
  constexpr int B = kGemvBatch<M>;
  constexpr int E = kGemvElements<T>;
  constexpr int kTurn = kGemvTurnElements<T>;
  constexpr int kGroups = kGemvWarps / Split;  // feature groups per block
  __shared__ float partial[Split > 1 ? kGemvWarps : 1][F][M];
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int group = warp / Split;
  const int slice = warp % Split;
  const int firstFeature = (blockIdx.x * kGroups + group) * F;
  const int turns = (innerSize + kTurn - 1) / kTurn;
  // rows past the weight's end read its last row (never written out), so loads need no feature guard
  const T* rows[F];
#pragma unroll
  for (int f = 0; f < F; ++f)
    rows[f] = weight + static_cast<long long>(min(firstFeature + f, outerSize - 1)) * innerSize + lane * E;

  uint4 loaded[B][F];
  const auto load = [&](int firstTurn) {
#pragma unroll
    for (int b = 0; b < B; ++b) {
      const int turn = firstTurn + b * Split;
      const bool inside = turn < turns && turn * kTurn + lane * E < innerSize;
#pragma unroll
      for (int f = 0; f < F; ++f)
        loaded[b][f] = inside ? loadWeight16(rows[f] + turn * kTurn) : make_uint4(0, 0, 0, 0);
    }
  };
  load(slice);
  waitForPrerequisiteGrid();  // the input comes from the kernel before

  float acc[F][M];
#pragma unroll
  for (int f = 0; f < F; ++f)
#pragma unroll
    for (int m = 0; m < M; ++m) acc[f][m] = 0.f;
  for (int firstTurn = slice; firstTurn < turns; firstTurn += B * Split) {
    uint4 current[B][F];
#pragma unroll
    for (int b = 0; b < B; ++b)
#pragma unroll
      for (int f = 0; f < F; ++f) current[b][f] = loaded[b][f];
    if (firstTurn + B * Split < turns) load(firstTurn + B * Split);
#pragma unroll
    for (int b = 0; b < B; ++b) {
      const int element = (firstTurn + b * Split) * kTurn + lane * E;
      if (firstTurn + b * Split >= turns || element >= innerSize) break;
      float xs[M][E];
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const float4* x = reinterpret_cast<const float4*>(input + static_cast<long long>(m) * innerSize + element);
#pragma unroll
        for (int v = 0; v < E / 4; ++v) {
          const float4 four = __ldg(x + v);
          xs[m][4 * v] = four.x, xs[m][4 * v + 1] = four.y, xs[m][4 * v + 2] = four.z, xs[m][4 * v + 3] = four.w;
        }
      }
#pragma unroll
      for (int f = 0; f < F; ++f) {
        float w[E];
        unpack16<T>(current[b][f], w);
#pragma unroll
        for (int m = 0; m < M; ++m)
#pragma unroll
          for (int e = 0; e < E; ++e) acc[f][m] = fmaf(w[e], xs[m][e], acc[f][m]);
      }
    }
  }
  allowDependentLaunch();
#pragma unroll
  for (int f = 0; f < F; ++f)
#pragma unroll
    for (int m = 0; m < M; ++m)
#pragma unroll
      for (int offset = 16; offset > 0; offset >>= 1)
        acc[f][m] += __shfl_xor_sync(0xffffffffu, acc[f][m], offset);
  if constexpr (Split > 1) {
    if (lane == 0) {
#pragma unroll
      for (int f = 0; f < F; ++f)
#pragma unroll
        for (int m = 0; m < M; ++m) partial[warp][f][m] = acc[f][m];
    }
    __syncthreads();
    if (slice != 0) return;
#pragma unroll
    for (int f = 0; f < F; ++f)
#pragma unroll
      for (int m = 0; m < M; ++m) {
        float sum = partial[warp][f][m];
#pragma unroll
        for (int s = 1; s < Split; ++s) sum += partial[warp + s][f][m];
        acc[f][m] = sum;
      }
  }
  if (lane != 0) return;
#pragma unroll
  for (int f = 0; f < F; ++f) {
    int feature = firstFeature + f;
    if (feature >= outerSize) break;
    int segment = 0;
    while (segment + 1 < outputs.count && feature >= outputs.widths[segment]) feature -= outputs.widths[segment++];
    float* out = outputs.data[segment];
    const int width = outputs.widths[segment];
#pragma unroll
    for (int m = 0; m < M; ++m) out[static_cast<long long>(m) * width + feature] = acc[f][m];
  }
}

template <typename T, int M, int Split>
void launchGemv(const MatmulParams& p, const MatmulOutputs& outputs, bool programmatic, cudaStream_t stream) {
  const int featuresPerBlock = (kGemvWarps / Split) * kGemvFeatures<M>;
  const dim3 grid(static_cast<unsigned int>(ceilDiv(p.outerSize, featuresPerBlock)));
  launchDependent(matmulGemvKernel<T, M, Split>, grid, dim3(kGemvWarps * 32), 0, stream, programmatic, p.input,
                  static_cast<const T*>(p.weight), outputs, p.innerSize, p.outerSize);
}

template <typename T, int M>
void launchGemvSplit(const MatmulParams& p, const MatmulOutputs& outputs, int split, bool programmatic,
                     cudaStream_t stream) {
  switch (split) {
    case 1: return launchGemv<T, M, 1>(p, outputs, programmatic, stream);
    case 2: return launchGemv<T, M, 2>(p, outputs, programmatic, stream);
    case 4: return launchGemv<T, M, 4>(p, outputs, programmatic, stream);
    default: return launchGemv<T, M, 8>(p, outputs, programmatic, stream);
  }
}

/** Warps of a block that split the inner dimension of an `outerSize`-row weight (1, 2, 4 or 8). */
int matmulGemvSplit(int outerSize, int rowCount, int multiprocessorCount) {
  // enough warps for about 32 per SM (two blocks of 8 warps resident, two waves): narrow weights split
  // their inner dimension over up to 8 warps
  const long long groups = ceilDiv(outerSize, rowCount == 1 ? kGemvFeatures<1> : kGemvFeatures<2>);
  int split = 1;
  while (split < kGemvWarps && groups * split < 32LL * multiprocessorCount) split *= 2;
  return split;
}
}  // namespace

bool matmulGemvSupports(const MatmulParams& p) {
  // inner a multiple of one 16-byte load of the weight (and 16-byte aligned input rows)
  const int elements = p.weightDType == DType::F32 ? kGemvElements<float> : kGemvElements<__half>;
  return (p.weightDType == DType::BF16 || p.weightDType == DType::F16 || p.weightDType == DType::F32) &&
         p.rowCount >= 1 && p.rowCount <= (p.weightDType == DType::F32 ? kMatmulGemvRowsF32 : kMatmulGemvRows) &&
         p.innerSize % elements == 0 && p.outerSize >= 1 &&
         reinterpret_cast<uintptr_t>(p.weight) % 16 == 0 && reinterpret_cast<uintptr_t>(p.input) % 16 == 0;
}

void matmulGemv(const MatmulParams& p, const MatmulOutputs& outputs, int multiprocessorCount, bool programmatic,
                cudaStream_t stream) {
  if (!matmulGemvSupports(p)) throw std::invalid_argument("matmulGemv: unsupported call (see matmulGemvSupports)");
  const int split = matmulGemvSplit(p.outerSize, p.rowCount, multiprocessorCount);
  const auto launch = [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if constexpr (std::is_same_v<T, float>) {
      switch (p.rowCount) {
        case 5: return launchGemvSplit<T, 5>(p, outputs, split, programmatic, stream);
        case 6: return launchGemvSplit<T, 6>(p, outputs, split, programmatic, stream);
        case 7: return launchGemvSplit<T, 7>(p, outputs, split, programmatic, stream);
        case 8: return launchGemvSplit<T, 8>(p, outputs, split, programmatic, stream);
        default: break;
      }
    }
    switch (p.rowCount) {
      case 1: return launchGemvSplit<T, 1>(p, outputs, split, programmatic, stream);
      case 2: return launchGemvSplit<T, 2>(p, outputs, split, programmatic, stream);
      case 3: return launchGemvSplit<T, 3>(p, outputs, split, programmatic, stream);
      default: return launchGemvSplit<T, 4>(p, outputs, split, programmatic, stream);
    }
  };
  withStoredType(p.weightDType, launch);
  checkLaunch("matmul gemv kernel");
}
}  // namespace fairkv
