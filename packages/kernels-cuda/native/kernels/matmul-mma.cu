// Decode matmul on tensor cores (and the column split of fused projections): output = input x weight^T for up to kMatmulTensorCoreRows rows with
// f16/bf16 weights in nn.Linear layout [outer][inner], or up to kMatmulTensorCoreRowsF32 rows with f32
// weights (TF32 split, mma.sync only). The backend runs it where cuBLAS is missing, for projections
// split into several outputs (it writes them in place: at every row count on Hopper with warpgroup MMAs,
// else up to 32 rows for unequal widths), and for larger f32 weights from 5 to 32 rows; elsewhere
// cuBLAS was as fast or faster, cold L2 (bench/cuda-matmul/NOTES.md). Bandwidth-bound on the weight,
// which is read exactly once: each block owns 128 outputs (the M dimension of the MMAs; 64 for the
// warpgroup kernel from 65 rows) and streams their weight rows through a pipeline of 128-byte slices
// (64 f16/bf16 elements, 32 f32), together with the same slice of every input row (the N dimension,
// rows padded with zeros). On Hopper each stage's weight slice is one bulk tensor copy (TMA) and the kernel is a
// programmatic dependent launch that asks for its first weight stages while the kernel before it still
// runs; from 17 rows, where the addon holds sm_90a code, warpgroup MMAs (matmulWgmmaKernel) read both
// boxes straight from shared memory, else mma.sync through ldmatrix (matmulTensorCoreKernel). With
// 16-bit weights the f32 input is first rounded to the weight's dtype (as a cuBLAS call with one operand
// type does); products accumulate in f32. With f32 weights the input is read as it is and each product
// is three TF32 MMAs of the hi parts and remainders (mma.sync.m16n8k8).
//
// Few output tiles (small projections, or fewer tiles than two per SM) split the inner dimension over
// the blocks of a thread-block cluster (Hopper, up to 8 blocks): each block leaves its f32 partial tile
// in its shared memory, and after a cluster barrier every block sums a share of the tile over all the
// blocks' partials through distributed shared memory, in block order, so the result does not depend on
// timing and no partial goes through global memory. Before Hopper there is no split. Shared memory rows
// are 128 bytes; 16-byte units are XOR-swizzled by row so ldmatrix reads are conflict-free.
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <map>
#include <tuple>
#include <type_traits>

#include "../common.h"
#include "dispatch.cuh"
#include "kernels.h"
#include "tensor-core.cuh"
#include "wgmma.cuh"

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

/**
 * The split's sum over a thread-block cluster (Hopper): every block of the cluster has left its partial
 * tile in its shared memory at `partial`, `Fragments` float4 in fragment order; block `split` sums share
 * `split` of the fragments that hold real rows over every block's partial, blocks in order (so the
 * result does not depend on timing), with the loads of one fragment from all blocks in flight
 * together, and stores them. `place(f)` gives fragment f's first (row, output); its four values are
 * (row, output), (row + 1, output), (row, output + 8) and (row + 1, output + 8).
 */
template <int Fragments, typename Place>
__device__ __forceinline__ void sumOverCluster(const TensorCoreArgs& a, float4* partial, int split, Place place) {
#if __CUDA_ARCH__ >= 900
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  const int begin = static_cast<int>(static_cast<long long>(split) * Fragments / a.splits);
  const int end = static_cast<int>(static_cast<long long>(split + 1) * Fragments / a.splits);
  for (int f = begin + threadIdx.x; f < end; f += kThreads) {
    const int2 at = place(f);
    if (at.x >= a.rows) continue;  // padding rows only
    float4 parts[kMaxSplits];
#pragma unroll
    for (int block = 0; block < kMaxSplits; ++block)
      if (block < a.splits) parts[block] = cluster.map_shared_rank(partial, block)[f];
    float sum[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int block = 0; block < kMaxSplits; ++block) {
      if (block < a.splits) {
        sum[0] += parts[block].x;
        sum[1] += parts[block].y;
        sum[2] += parts[block].z;
        sum[3] += parts[block].w;
      }
    }
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (at.x + (e & 1) < a.rows && at.y + (e >> 1) * 8 < a.outer)
        store(a.outputs, at.x + (e & 1), at.y + (e >> 1) * 8, sum[e]);
  }
  cluster.sync();  // keep every partial alive until the others have read it
#else
  __trap();  // the host splits only on Hopper and newer
#endif
}

#ifndef FAIRKV_MATMUL_WIDE_MIN_NT  // benchmark experiments only
#define FAIRKV_MATMUL_WIDE_MIN_NT 8
#endif
/** How the 8 warps split a block's [128 outputs] x [NT x 8 rows] tile (see the kernel). */
template <int NT>
struct WarpTile {
  static constexpr bool kWide = NT >= FAIRKV_MATMUL_WIDE_MIN_NT;
  static constexpr int kM = kWide ? 2 : 1;        // 16-output MMA tiles per warp
  static constexpr int kN = kWide ? NT / 2 : NT;  // 8-row MMA tiles per warp
  /** First output (within the block's tile) of warp `warp`'s MMA tile `m`. */
  static __device__ __forceinline__ int output(int warp, int m) { return (kWide ? (warp & 3) : warp) * 16 * kM + m * 16; }
  /** First row of warp `warp`'s MMA tile `n`. */
  static __device__ __forceinline__ int row(int warp, int n) { return ((kWide ? (warp >> 2) : 0) * kN + n) * 8; }
};

/**
 * `Bulk` (Hopper): each stage's weight slice [128 outputs][64 inner] arrives as one bulk tensor copy
 * (TMA, a 2D tensor map over the weight, 128-byte swizzle = the layout `swizzle` gives the element
 * copies, 256-byte L2 promotion) on a transaction barrier per stage buffer, and the first stages'
 * weights are asked for before the kernel waits on the one before it (programmatic dependent launch:
 * the weight is constant, only the input comes from that kernel). Otherwise every thread copies its
 * 16-byte units of weight and input with cp.async.
 */
template <typename T, int NT, bool Bulk>
__global__ void __launch_bounds__(kThreads) matmulTensorCoreKernel(TensorCoreArgs a, const __grid_constant__ CUtensorMap weightMap) {
  constexpr int kPaddedRows = NT * 8;
  constexpr int kStageBytes = kWeightStageBytes + kPaddedRows * kStageUnits * 16;
  static_assert(kStageBytes % 1024 == 0, "stage buffers keep the 1 KB alignment of the 128-byte swizzle");
  extern __shared__ __align__(128) unsigned char sharedBytes[];
  unsigned char* shared = sharedBytes;
  if constexpr (Bulk) shared += (1024 - (sharedAddress(sharedBytes) & 1023)) & 1023;
  __shared__ unsigned long long barriers[kStages];
  const int tile = blockIdx.x;
  const int split = blockIdx.y;
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int firstOutput = tile * kTileOutputs;
  const int stageBegin = static_cast<int>(static_cast<long long>(split) * a.stageCount / a.splits);
  const int count = static_cast<int>(static_cast<long long>(split + 1) * a.stageCount / a.splits) - stageBegin;
  // weight and input rows: f16/bf16 (the input rounded to the weight's dtype) or f32 (the input as it is)
  constexpr bool kF32 = std::is_same_v<T, float>;
  const long long rowBytes = static_cast<long long>(a.inner) * sizeof(T);
  const int rowUnits = static_cast<int>(rowBytes / 16);

  auto loadWeights = [&](int stage, int buffer) {
    unsigned char* base = shared + buffer * kStageBytes;
    const int firstUnit = (stageBegin + stage) * kStageUnits;
    if constexpr (Bulk) {
      if (threadIdx.x == 0) {
        barrierArriveExpecting(&barriers[buffer], kWeightStageBytes);  // the whole box, zeros past the edges included
        tileLoad2d(base, &weightMap, firstUnit * static_cast<int>(16 / sizeof(T)), firstOutput, &barriers[buffer]);
      }
    } else {
#pragma unroll
      for (int i = threadIdx.x; i < kTileOutputs * kStageUnits; i += kThreads) {
        const int row = i >> 3;
        const int unit = i & 7;
        const bool valid = firstOutput + row < a.outer && firstUnit + unit < rowUnits;
        const unsigned char* source =
            valid ? a.weight + (firstOutput + row) * rowBytes + (firstUnit + unit) * 16LL : a.weight;
        copyAsync16(base + row * 128 + swizzle(row, unit) * 16, source, valid);
      }
    }
  };
  auto loadInputs = [&](int stage, int buffer) {
    unsigned char* inputs = shared + buffer * kStageBytes + kWeightStageBytes;
    const int firstUnit = (stageBegin + stage) * kStageUnits;
#pragma unroll
    for (int i = threadIdx.x; i < kPaddedRows * kStageUnits; i += kThreads) {
      const int row = i >> 3;
      const int unit = i & 7;
      const bool valid = row < a.rows && firstUnit + unit < rowUnits;
      const unsigned char* source = valid ? a.input + row * rowBytes + (firstUnit + unit) * 16LL : a.input;
      copyAsync16(inputs + row * 128 + swizzle(row, unit) * 16, source, valid);
    }
  };

  // Warp tiles: up to 32 rows, warp w owns outputs [16 w, 16 w + 16) for every row; from 33 rows
  // (kWide) the 8 warps are 4 groups of 32 outputs x 2 halves of the rows, so each input fragment loaded
  // from shared memory feeds two MMAs (6 ldmatrix per 16 MMAs instead of 9 at 128 rows): 1-3% faster at
  // 58 rows, 4-7% at 124, 0-3% slower at 32 (bench/cuda-matmul/NOTES.md).
  using Tile = WarpTile<NT>;
  constexpr int kM = Tile::kM;
  constexpr int kN = Tile::kN;
  // f(m, n, e) for every accumulator register of the warp tile
  const auto forEachAccumulator = [](auto&& f) {
#pragma unroll
    for (int m = 0; m < kM; ++m)
#pragma unroll
      for (int n = 0; n < kN; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) f(m, n, e);
  };
  float acc[kM][kN][4];
  forEachAccumulator([&](int m, int n, int e) { acc[m][n][e] = 0.f; });

  if constexpr (Bulk) {
    if (threadIdx.x == 0)
      for (int b = 0; b < kStages; ++b) barrierInit(&barriers[b], 1);
    __syncthreads();
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s)
      if (s < count) loadWeights(s, s);
  }
  waitForPrerequisiteGrid();  // the input comes from the kernel before (the rounding)
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < count) {
      if constexpr (!Bulk) loadWeights(s, s);
      loadInputs(s, s);
    }
    commitAsync();
  }
  for (int t = 0; t < count; ++t) {
    waitAsync<kStages - 2>();
    if constexpr (Bulk) barrierWait(&barriers[t % kStages], (t / kStages) & 1);
    __syncthreads();  // stage t landed for every thread; stage t - 1's buffer is free
    if (t + kStages - 1 < count) {
      loadWeights(t + kStages - 1, (t + kStages - 1) % kStages);
      loadInputs(t + kStages - 1, (t + kStages - 1) % kStages);
    }
    commitAsync();
    const unsigned char* base = shared + (t % kStages) * kStageBytes;
    const unsigned char* inputs = base + kWeightStageBytes;
    const int matrix = lane >> 3;
    // f32 (TF32 split): the stage's products go into zeroed registers, added to acc in f32 below (the
    // tensor cores' accumulation truncates). Fresh registers per k-step instead, or lo rounded to TF32
    // rather than truncated by the tensor cores, measured the same accuracy against cuBLAS and were
    // 3-7% slower at 64 rows (bench/cuda-matmul/NOTES.md, "Session 15").
    float stageAcc[kF32 ? kM : 1][kF32 ? kN : 1][4];
    if constexpr (kF32) forEachAccumulator([&](int m, int n, int e) { stageAcc[m][n][e] = 0.f; });
    // d += weights x input (b0, b1): one m16n8k16 MMA, or for f32 the three TF32 products of the split
    // (b0, b1 the hi parts, bLo the lo parts)
    const auto mma = [&](int m, int n, const unsigned (&w)[4], const unsigned (&wLo)[4], unsigned b0, unsigned b1,
                         const unsigned (&bLo)[2]) {
      if constexpr (kF32) {
        const unsigned bHi[2] = {b0, b1};
        mmaSplitTf32(stageAcc[m][n], w, wLo, bHi, bLo);
      } else {
        MmaOps<T>::mma(acc[m][n], w, b0, b1);
      }
    };
    // f32: splits fragment registers in place into their TF32 hi parts, the lo parts into `lo`
    const auto split = [&](auto& hi, auto& lo) {
      if constexpr (kF32) {
#pragma unroll
        for (int e = 0; e < static_cast<int>(sizeof(hi) / sizeof(hi[0])); ++e)
          splitTf32(__uint_as_float(hi[e]), hi[e], lo[e]);
      }
    };
    // k-steps of 16 elements (8 for f32: m16n8k8), two 16-byte units of every row each; ldmatrix hands
    // f32 fragments over as they lie (thread lane gets word lane % 4 of row lane / 4 of each 8 x 16-byte
    // matrix: the TF32 A and B fragment layouts)
#pragma unroll
    for (int k = 0; k < kStageUnits / 2; ++k) {
      unsigned weights[kM][4];
      unsigned weightsLo[kM][4];
#pragma unroll
      for (int m = 0; m < kM; ++m) {
        const int row = Tile::output(warp, m) + (lane & 7) + ((matrix & 1) << 3);
        loadMatrixX4(weights[m], base + row * 128 + swizzle(row, 2 * k + (matrix >> 1)) * 16);
        split(weights[m], weightsLo[m]);
      }
      if constexpr (kN == 1) {
        unsigned b[2], bLo[2]{};  // bLo: f32 only
        const int row = lane & 7;
        loadMatrixX2(b, inputs + row * 128 + swizzle(row, 2 * k + (matrix & 1)) * 16);
        split(b, bLo);
#pragma unroll
        for (int m = 0; m < kM; ++m) mma(m, 0, weights[m], weightsLo[m], b[0], b[1], bLo);
      } else {
#pragma unroll
        for (int n = 0; n < kN; n += 2) {
          unsigned b[4], bLo[4]{};  // bLo: f32 only
          const int row = Tile::row(warp, n) + (lane & 7) + ((matrix >> 1) << 3);
          loadMatrixX4(b, inputs + row * 128 + swizzle(row, 2 * k + (matrix & 1)) * 16);
          split(b, bLo);
          const unsigned lo01[2] = {bLo[0], bLo[1]};
          const unsigned lo23[2] = {bLo[2], bLo[3]};
#pragma unroll
          for (int m = 0; m < kM; ++m) {
            mma(m, n, weights[m], weightsLo[m], b[0], b[1], lo01);
            mma(m, n + 1, weights[m], weightsLo[m], b[2], b[3], lo23);
          }
        }
      }
    }
    if constexpr (kF32) forEachAccumulator([&](int m, int n, int e) { acc[m][n][e] += stageAcc[m][n][e]; });
  }
  waitAsync<0>();

  // acc[m][n][e]: output Tile::output(warp, m) + lane / 4 (+ 8 for e >= 2) of the tile, row
  // Tile::row(warp, n) + 2 (lane % 4) + e % 2
  if (a.splits == 1) {
#pragma unroll
    for (int m = 0; m < kM; ++m)
#pragma unroll
      for (int n = 0; n < kN; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int row = Tile::row(warp, n) + 2 * (lane & 3) + (e & 1);
          const int output = firstOutput + Tile::output(warp, m) + (lane >> 2) + (e >> 1) * 8;
          if (row < a.rows && output < a.outer) store(a.outputs, row, output, acc[m][n][e]);
        }
    return;
  }
  // split: this block's partial tile in its (now idle) stage buffers, as the fragments lie (thread t's
  // acc[m][n] is float4 (m kN + n) kThreads + t: conflict-free stores, 16-byte loads), summed over the
  // cluster
  __syncthreads();
  float4* partial = reinterpret_cast<float4*>(shared);
#pragma unroll
  for (int m = 0; m < kM; ++m)
#pragma unroll
    for (int n = 0; n < kN; ++n)
      partial[(m * kN + n) * kThreads + threadIdx.x] = make_float4(acc[m][n][0], acc[m][n][1], acc[m][n][2], acc[m][n][3]);
  sumOverCluster<kM * kN * kThreads>(a, partial, split, [&](int f) {
    const int owner = f % kThreads;  // the thread whose fragment this is
    const int ownerWarp = owner >> 5;
    return make_int2(Tile::row(ownerWarp, (f / kThreads) % kN) + 2 * (owner & 3),
                     firstOutput + Tile::output(ownerWarp, f / kThreads / kN) + ((owner & 31) >> 2));
  });
}

#ifndef FAIRKV_WGMMA_STAGES_128  // benchmark experiments only
#define FAIRKV_WGMMA_STAGES_128 4
#endif
#ifndef FAIRKV_WGMMA_NARROW_STAGES  // benchmark experiments only
#define FAIRKV_WGMMA_NARROW_STAGES 8
#endif
/**
 * Stage buffers of the warpgroup kernel (weights TO x 128 bytes + inputs N x 128 bytes each). Tiles of
 * 128 outputs: 4 (at 128 rows one block per SM; 3 buffers, two blocks per SM, measured mixed: -6 to +23%
 * by shape, bench/cuda-matmul). Tiles of 64 outputs: FAIRKV_WGMMA_NARROW_STAGES, one block per SM with
 * 7 stages of weight in flight.
 */
template <int N, int TO>
constexpr int wgmmaStages() {
  return TO == 64 ? FAIRKV_WGMMA_NARROW_STAGES : N == 128 ? FAIRKV_WGMMA_STAGES_128 : 4;
}
template <int N, int TO>
constexpr int wgmmaSharedBytes() {
  return wgmmaStages<N, TO>() * (TO * kStageUnits * 16 + N * kStageUnits * 16) + 1024;
}
/** Blocks of the warpgroup kernel an SM holds (its shared memory: 228 KB, 1 KB per block reserved). */
constexpr int wgmmaBlocksPerMultiprocessor(int sharedBytes) { return 233472 / (sharedBytes + 1024); }

/**
 * The same product on Hopper's warpgroup MMAs (sm_90a), for 17 to 128 rows: a block's tile is TO
 * outputs by all N (padded) rows. TO = 128: two warpgroups, each owning 64 of the outputs for every
 * row; TO = 64 (from kWgmmaNarrowMinRows rows while the tiles fit in one wave: twice the tiles, so
 * that about every SM streams a share of the weight): both warpgroups multiply the same 64 outputs,
 * each for half of the rows. A stage's weight box [TO outputs][64 inner] and input box [N rows][64
 * inner] are read straight from shared memory (no ldmatrix, no register staging); both arrive by bulk
 * tensor copies (the input box from the rounded input, rows past the real ones zero-filled) on one
 * transaction barrier per stage, wgmmaStages - 1 stages ahead. Split partials are summed over the
 * cluster as in matmulTensorCoreKernel.
 */
template <typename T, int N, int TO>
__global__ void __launch_bounds__(kThreads) matmulWgmmaKernel(TensorCoreArgs a, const __grid_constant__ CUtensorMap weightMap,
                                                               const __grid_constant__ CUtensorMap inputMap) {
  static_assert(TO == 64 || TO == 128, "tiles of 64 or 128 outputs");
  constexpr int kWeightBytes = TO * kStageUnits * 16;
  constexpr int kInputBytes = N * kStageUnits * 16;
  constexpr int kStageBytes = kWeightBytes + kInputBytes;
  constexpr int S = wgmmaStages<N, TO>();
  constexpr int NG = TO == 128 ? N : N / 2;  // rows each warpgroup multiplies
  static_assert(kStageBytes % 1024 == 0, "stage buffers keep the 1 KB alignment of the 128-byte swizzle");
  extern __shared__ __align__(128) unsigned char sharedBytes[];
  unsigned char* shared = sharedBytes + ((1024 - (sharedAddress(sharedBytes) & 1023)) & 1023);
  __shared__ unsigned long long barriers[S];
  const int tile = blockIdx.x;
  const int split = blockIdx.y;
  const int group = threadIdx.x >> 7;  // warpgroup
  const int firstOutput = tile * TO;
  const int stageBegin = static_cast<int>(static_cast<long long>(split) * a.stageCount / a.splits);
  const int count = static_cast<int>(static_cast<long long>(split + 1) * a.stageCount / a.splits) - stageBegin;

  const auto issueWeights = [&](int stage) {  // thread 0; also announces the input box's bytes
    const int buffer = stage % S;
    barrierArriveExpecting(&barriers[buffer], kStageBytes);
    tileLoad2d(shared + buffer * kStageBytes, &weightMap, (stageBegin + stage) * kStageUnits * 8, firstOutput,
               &barriers[buffer]);
  };
  const auto issueInputs = [&](int stage) {  // thread 0
    const int buffer = stage % S;
    tileLoad2d(shared + buffer * kStageBytes + kWeightBytes, &inputMap, (stageBegin + stage) * kStageUnits * 8, 0,
               &barriers[buffer]);
  };
  if (threadIdx.x == 0) {
    for (int b = 0; b < S; ++b) barrierInit(&barriers[b], 1);
    for (int s = 0; s < S - 1 && s < count; ++s) issueWeights(s);  // the weight is constant: before the wait
  }
  waitForPrerequisiteGrid();  // the input comes from the kernel before (the rounding)
  if (threadIdx.x == 0)
    for (int s = 0; s < S - 1 && s < count; ++s) issueInputs(s);
  __syncthreads();  // the barriers are initialised before anyone waits on them

  float d[NG / 2];
#pragma unroll
  for (int i = 0; i < NG / 2; ++i) d[i] = 0.f;
  for (int t = 0; t < count; ++t) {
    barrierWait(&barriers[t % S], (t / S) & 1);
    __syncthreads();  // every warpgroup finished stage t - 1's MMAs: its buffer may be refilled
    if (threadIdx.x == 0 && t + S - 1 < count) {
      issueWeights(t + S - 1);
      issueInputs(t + S - 1);
    }
    const unsigned char* weights = shared + (t % S) * kStageBytes + (TO == 128 ? group * 64 * 128 : 0);
    const unsigned char* inputs = shared + (t % S) * kStageBytes + kWeightBytes + (TO == 128 ? 0 : group * NG * 128);
#pragma unroll
    for (int i = 0; i < NG / 2; ++i) wgmmaOperandFence(d[i]);
    wgmmaFence();
#pragma unroll
    for (int k = 0; k < kStageUnits / 2; ++k)
      Wgmma<T, NG>::mma(d, wgmmaDescriptor(weights + 32 * k), wgmmaDescriptor(inputs + 32 * k));
    wgmmaCommit();
    wgmmaWaitAll();
#pragma unroll
    for (int i = 0; i < NG / 2; ++i) wgmmaOperandFence(d[i]);
  }

  // d[4 g + e] (g = 2 j + half) of thread `owner` (warp w of its warpgroup): output 16 w + lane / 4 (+ 8
  // for e >= 2) of its warpgroup's outputs, row 16 j + 8 half + 2 (lane % 4) + e % 2 of its rows
  const auto outputOf = [&](int owner) {
    return firstOutput + (TO == 128 ? (owner >> 7) * 64 : 0) + ((owner >> 5) & 3) * 16 + ((owner & 31) >> 2);
  };
  const auto rowOf = [&](int owner, int g) {
    return (TO == 128 ? 0 : (owner >> 7) * NG) + 16 * (g >> 1) + 8 * (g & 1) + 2 * (owner & 3);
  };
  if (a.splits == 1) {
#pragma unroll
    for (int g = 0; g < NG / 8; ++g)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = rowOf(threadIdx.x, g) + (e & 1);
        const int output = outputOf(threadIdx.x) + (e >> 1) * 8;
        if (row < a.rows && output < a.outer) store(a.outputs, row, output, d[4 * g + e]);
      }
    return;
  }
  // split: the partial tile in the (now idle) stage buffers as the fragments lie (thread t's d[4 g..4 g + 3]
  // is float4 g kThreads + t), summed over the cluster
  __syncthreads();
  float4* partial = reinterpret_cast<float4*>(shared);
#pragma unroll
  for (int g = 0; g < NG / 8; ++g) partial[g * kThreads + threadIdx.x] = make_float4(d[4 * g], d[4 * g + 1], d[4 * g + 2], d[4 * g + 3]);
  sumOverCluster<NG / 8 * kThreads>(a, partial, split, [&](int f) {
    const int owner = f % kThreads;
    return make_int2(rowOf(owner, f / kThreads), outputOf(owner));
  });
}

__global__ void wgmmaProbeKernel(int* built) { *built = FAIRKV_HAS_WGMMA; }

__global__ void splitColumnsKernel(const float* __restrict__ source, long long count, int total, MatmulOutputs outputs) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    store(outputs, static_cast<int>(i / total), static_cast<int>(i % total), source[i]);
  }
}

int paddedTiles(int rows) { return rows <= 8 ? 1 : rows <= 16 ? 2 : rows <= 32 ? 4 : rows <= 64 ? 8 : 16; }

struct Geometry {
  int tiles, splits, stageCount, nt;
  bool dependentLaunch;  // compute capability 9.0+: a programmatic dependent launch after the rounding
};

/** `blocksPerMultiprocessor`: how many of the kernel's blocks fit on an SM (its shared memory). */
Geometry geometryOf(const MatmulParams& p, int multiprocessorCount, bool clusters, int blocksPerMultiprocessor = 2,
                    int tileOutputs = kTileOutputs) {
  Geometry g{};
  g.dependentLaunch = clusters;
  g.nt = paddedTiles(p.rowCount);
  g.tiles = static_cast<int>(ceilDiv(p.outerSize, tileOutputs));
  g.stageCount = static_cast<int>(ceilDiv(p.innerSize, kStageUnits * 16 / dtypeBytes(p.weightDType)));  // 128-byte slices
  // split the inner dimension until at most as many blocks as fit at once (mma.sync kernel: two per SM,
  // at most 96 KB of stages each), keeping at least two stages per block
  const int resident = blocksPerMultiprocessor * multiprocessorCount;
  g.splits = clusters ? std::max(1, std::min({resident / g.tiles, kMaxSplits, g.stageCount / 2})) : 1;
  return g;
}

/**
 * A 2D tensor map over the weight [outer][inner] with [tileOutputs][128 bytes] boxes (64 f16/bf16
 * elements, 32 f32) and the 128-byte swizzle (the bulk-copy path). False where the driver has no
 * cuTensorMapEncodeTiled or refuses the map (the weight must be 16-byte aligned and its rows a multiple
 * of 16 bytes): the kernel then copies element by element.
 */
bool weightTensorMap(const MatmulParams& p, CUtensorMap& map, int tileOutputs = kTileOutputs) {
  return swizzledRowsTensorMap(p.weight, p.weightDType, p.innerSize, p.outerSize, tileOutputs, map);
}

/** The input box of the warpgroup kernel: [N rows][64 inner] of the rounded input, 128-byte swizzle. */
bool inputTensorMap(const MatmulParams& p, const void* rounded, int n, CUtensorMap& map) {
  return swizzledRowsTensorMap(rounded, p.weightDType, p.innerSize, p.rowCount, n, map);
}

/** Sets `kernel`'s dynamic shared memory limit once per device this thread launches on. */
template <typename Kernel>
void allowSharedBytes(Kernel kernel, int bytes, unsigned long long& configuredDevices) {
  int device = 0;
  checkCuda(cudaGetDevice(&device), "cudaGetDevice");
  const unsigned long long bit = 1ULL << (device & 63);
  if ((configuredDevices & bit) != 0) return;
  checkCuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
            "cudaFuncSetAttribute(matmul kernel)");
  configuredDevices |= bit;
}

/**
 * Fewer splits where the tiles' clusters would not all be resident at once: a cluster's blocks must
 * share a GPC, so on an H100 32 clusters of 4 blocks that each fill an SM already need a second wave
 * (which doubled the 4096 x 3584 down projection's time at 124 rows). Steps the split count down to
 * the next power of two until `cudaOccupancyMaxActiveClusters` holds every tile's cluster; remembered
 * per device, kernel and shape.
 */
template <typename... Params>
int residentSplits(void (*kernel)(Params...), const Geometry& g, int sharedBytes) {
  static thread_local std::map<std::tuple<int, const void*, int, int, int>, int> known;
  int device = 0;
  checkCuda(cudaGetDevice(&device), "cudaGetDevice");
  const auto key = std::make_tuple(device, reinterpret_cast<const void*>(kernel), g.tiles, g.splits, sharedBytes);
  const auto found = known.find(key);
  if (found != known.end()) return found->second;
  int splits = g.splits;
  while (splits > 1) {
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(g.tiles, splits);
    config.blockDim = dim3(kThreads);
    config.dynamicSmemBytes = sharedBytes;
    cudaLaunchAttribute cluster{};
    cluster.id = cudaLaunchAttributeClusterDimension;
    cluster.val.clusterDim.x = 1;
    cluster.val.clusterDim.y = splits;
    cluster.val.clusterDim.z = 1;
    config.attrs = &cluster;
    config.numAttrs = 1;
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) != cudaSuccess) {
      cudaGetLastError();  // not sticky: keep the split as it was
      break;
    }
    if (clusters >= g.tiles) break;
    splits = 1 << (31 - __builtin_clz(splits - 1));  // the next power of two below: 5 -> 4 -> 2 -> 1
  }
  known.emplace(key, splits);
  return splits;
}

/** Launches `kernel` over the tiles x splits grid: a cluster of the splits, a dependent launch on Hopper. */
template <typename... Params, typename... Args>
void launchTiles(void (*kernel)(Params...), const Geometry& g, int sharedBytes, cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(g.tiles, g.splits);
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = sharedBytes;
  config.stream = stream;
  cudaLaunchAttribute attributes[2]{};
  int count = 0;
  if (g.splits > 1) {
    attributes[count].id = cudaLaunchAttributeClusterDimension;
    attributes[count].val.clusterDim.x = 1;
    attributes[count].val.clusterDim.y = g.splits;
    attributes[count].val.clusterDim.z = 1;
    ++count;
  }
  if (g.dependentLaunch) {
    // the rounding kernel before lets this one start early: the first weight stages load meanwhile
    attributes[count].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attributes[count].val.programmaticStreamSerializationAllowed = 1;
    ++count;
  }
  config.attrs = attributes;
  config.numAttrs = count;
  checkCuda(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...), "cudaLaunchKernelEx(matmul kernel)");
}

template <typename T, int N, int TO>
void launchWgmma(const TensorCoreArgs& args, const Geometry& g, const CUtensorMap& weightMap, const CUtensorMap& inputMap,
                 cudaStream_t stream) {
  static thread_local unsigned long long configuredDevices = 0;
  constexpr int kShared = wgmmaSharedBytes<N, TO>();
  allowSharedBytes(matmulWgmmaKernel<T, N, TO>, kShared, configuredDevices);
  Geometry fitted = g;
  fitted.splits = residentSplits(matmulWgmmaKernel<T, N, TO>, g, kShared);
  TensorCoreArgs fittedArgs = args;
  fittedArgs.splits = fitted.splits;
  launchTiles(matmulWgmmaKernel<T, N, TO>, fitted, kShared, stream, fittedArgs, weightMap, inputMap);
}

template <typename T, int NT, bool Bulk>
void launch(const TensorCoreArgs& args, const Geometry& g, const CUtensorMap& weightMap, cudaStream_t stream) {
  constexpr int kSharedBytes = kStages * (kWeightStageBytes + NT * 8 * kStageUnits * 16) + (Bulk ? 1024 : 0);
  static thread_local unsigned long long configuredDevices = 0;
  allowSharedBytes(matmulTensorCoreKernel<T, NT, Bulk>, kSharedBytes, configuredDevices);
  Geometry fitted = g;
  fitted.splits = residentSplits(matmulTensorCoreKernel<T, NT, Bulk>, g, kSharedBytes);
  TensorCoreArgs fittedArgs = args;
  fittedArgs.splits = fitted.splits;
  launchTiles(matmulTensorCoreKernel<T, NT, Bulk>, fitted, kSharedBytes, stream, fittedArgs, weightMap);
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
  if (p.rowCount < 1 || reinterpret_cast<uintptr_t>(p.weight) % 16 != 0) return false;
  if (p.weightDType == DType::F32)  // the input is read as it is: 16-byte rows and alignment
    return p.rowCount <= kMatmulTensorCoreRowsF32 && p.innerSize % 4 == 0 && reinterpret_cast<uintptr_t>(p.input) % 16 == 0;
  return (p.weightDType == DType::BF16 || p.weightDType == DType::F16) && p.rowCount <= kMatmulTensorCoreRows &&
         p.innerSize % 8 == 0;
}

size_t matmulTensorCoreWorkspaceBytes(const MatmulParams& p) {
  return p.weightDType == DType::F32 ? 0 : static_cast<size_t>(p.rowCount) * p.innerSize * 2;
}

#ifndef FAIRKV_WGMMA_MIN_ROWS  // benchmark experiments only
#define FAIRKV_WGMMA_MIN_ROWS 17
#endif
#ifndef FAIRKV_WGMMA_NARROW_MIN_ROWS  // benchmark experiments only
#define FAIRKV_WGMMA_NARROW_MIN_ROWS 65
#endif
/** From this many rows the warpgroup kernel takes tiles of kNarrowTileOutputs (twice the blocks streaming the weight). */
constexpr int kWgmmaNarrowMinRows = FAIRKV_WGMMA_NARROW_MIN_ROWS;
/** The warpgroup kernel's narrow tile: the outputs of one warpgroup's MMAs. */
constexpr int kNarrowTileOutputs = 64;
static_assert(kWgmmaNarrowMinRows > 16, "each warpgroup of a 64-output tile multiplies at least 16 rows");

bool matmulWarpgroupMmaBuilt() {
  // any failure means "not available": the mma.sync kernel serves instead
  int* flag = nullptr;
  if (cudaMalloc(&flag, sizeof(int)) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  int built = 0;
  wgmmaProbeKernel<<<1, 1>>>(flag);
  const bool ok = cudaGetLastError() == cudaSuccess &&
                  cudaMemcpy(&built, flag, sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess;
  cudaFree(flag);
  cudaGetLastError();
  return ok && built == 1;
}

void matmulTensorCore(const MatmulParams& p, const MatmulOutputs& outputs, void* workspace, int multiprocessorCount,
                      bool clusters, bool bulkCopies, bool warpgroupMma, cudaStream_t stream) {
  if (p.rowCount <= 0 || p.outerSize <= 0) return;
  if (!matmulTensorCoreSupports(p)) throw std::invalid_argument("matmulTensorCore: unsupported shape or dtype");
  // f16/bf16: the input rounded to the weight's dtype first; f32: read as it is (TF32 split in the kernel)
  const bool f32 = p.weightDType == DType::F32;
  auto* bytes = f32 ? reinterpret_cast<unsigned char*>(const_cast<float*>(p.input)) : static_cast<unsigned char*>(workspace);
  if (!f32) convertFloatTo(p.input, bytes, p.weightDType, static_cast<long long>(p.rowCount) * p.innerSize, stream);
  const int n = p.rowCount <= 16 ? 16 : p.rowCount <= 32 ? 32 : p.rowCount <= 64 ? 64 : 128;
  const bool wgmma = !f32 && clusters && bulkCopies && warpgroupMma && p.rowCount >= FAIRKV_WGMMA_MIN_ROWS;
  // 64-output tiles while they fit in one wave (a block per SM): past that, twice the tiles only queue
  // (tp2 gate | up split, 224 tiles, at 100-124 rows: 64-65 against 52 µs for cuBLAS)
  const int tileOutputs =
      wgmma && p.rowCount >= kWgmmaNarrowMinRows && ceilDiv(p.outerSize, kNarrowTileOutputs) <= multiprocessorCount
          ? kNarrowTileOutputs
          : kTileOutputs;
  CUtensorMap weightMap{};
  bool bulk = clusters && bulkCopies && weightTensorMap(p, weightMap, tileOutputs);
  const auto dispatchHalfType = [&](auto body) {  // the warpgroup kernel: f16/bf16 only
    if (p.weightDType == DType::BF16) body(static_cast<__nv_bfloat16*>(nullptr));
    else body(static_cast<__half*>(nullptr));
  };
  CUtensorMap inputMap{};
  if (bulk && wgmma && inputTensorMap(p, bytes, n, inputMap)) {
    const auto run = [&](auto to) {
      constexpr int TO = decltype(to)::value;
      const int shared = n == 16   ? wgmmaSharedBytes<16, TO>()
                         : n == 32 ? wgmmaSharedBytes<32, TO>()
                         : n == 64 ? wgmmaSharedBytes<64, TO>()
                                   : wgmmaSharedBytes<128, TO>();
      const Geometry g =
          geometryOf(p, multiprocessorCount, clusters, wgmmaBlocksPerMultiprocessor(shared), TO);
      const TensorCoreArgs args{static_cast<const unsigned char*>(p.weight), bytes, outputs, p.rowCount, p.innerSize,
                                p.outerSize, g.splits, g.stageCount};
      dispatchHalfType([&](auto* tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        switch (n) {
          case 16:
            if constexpr (TO == 128) launchWgmma<T, 16, TO>(args, g, weightMap, inputMap, stream);
            break;  // tiles of 64 outputs start above 32 rows (each warpgroup multiplies half of them)
          case 32: launchWgmma<T, 32, TO>(args, g, weightMap, inputMap, stream); break;
          case 64: launchWgmma<T, 64, TO>(args, g, weightMap, inputMap, stream); break;
          default: launchWgmma<T, 128, TO>(args, g, weightMap, inputMap, stream); break;
        }
      });
    };
    if (tileOutputs == kNarrowTileOutputs) run(std::integral_constant<int, kNarrowTileOutputs>{});
    else run(std::integral_constant<int, 128>{});
    checkLaunch("matmul warpgroup kernel");
    return;
  }
  // a weight map of 64-output boxes was made for the warpgroup kernel, which could not run: the mma.sync
  // kernel's bulk copies take boxes of its 128-output tile
  if (tileOutputs != kTileOutputs && bulk) bulk = weightTensorMap(p, weightMap);
  const Geometry g = geometryOf(p, multiprocessorCount, clusters);
  const TensorCoreArgs args{static_cast<const unsigned char*>(p.weight), bytes, outputs, p.rowCount, p.innerSize,
                            p.outerSize, g.splits, g.stageCount};
  withStoredType(p.weightDType, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const auto withBulk = [&](auto nt) {
      constexpr int NT = decltype(nt)::value;
      if constexpr (std::is_same_v<T, float> && NT * 8 > kMatmulTensorCoreRowsF32) {
        throw std::logic_error("matmulTensorCore: f32 rows past kMatmulTensorCoreRowsF32");  // supports() refuses them
      } else {
        if (bulk) launch<T, NT, true>(args, g, weightMap, stream);
        else launch<T, NT, false>(args, g, weightMap, stream);
      }
    };
    switch (g.nt) {
      case 1: withBulk(std::integral_constant<int, 1>{}); break;
      case 2: withBulk(std::integral_constant<int, 2>{}); break;
      case 4: withBulk(std::integral_constant<int, 4>{}); break;
      case 8: withBulk(std::integral_constant<int, 8>{}); break;
      default: withBulk(std::integral_constant<int, 16>{}); break;
    }
  });
  checkLaunch("matmul tensor-core kernel");
}
}  // namespace fairkv
