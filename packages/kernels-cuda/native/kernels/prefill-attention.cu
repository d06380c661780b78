// prefill-attention: causal GQA self-attention over one prompt that also returns the
// observation-window scores (the last `windowSize` query rows of the softmax, per query head) that
// SnapKV / Ada-KV / HeadKV style compression policies consume.
//
// Two kernels do it. The tensor-core kernel (head dims 64 and 128, compute capability 8.0+, 16-byte
// aligned operands) is flash-attention style: a block of 4 warps takes 64 query rows of one head,
// streams the keys up to the diagonal in 64-row tiles (cp.async into shared memory: Q once, K and V
// each one tile ahead), keeps an online softmax per row in registers, and multiplies with
// mma.sync.m16n8k8 on TF32 split three ways (hi*hi + hi*lo + lo*hi; Q and K fragments by ldmatrix),
// which keeps f32 accuracy (3-4e-6 relative to float64 at 16K tokens, where plain TF32 gives about
// 1e-3). It writes the output and, for window rows (or every row, for the accumulated scores), the
// row's log-sum-exp. The window kernel then recomputes the window rows' scores exactly in f32 and
// normalises them by it; for the window's column sums and H2O's accumulated scores a column kernel
// recomputes the rows' scores on tensor cores and sums the probabilities per key. The element kernel
// (every other case, and the `tensorCores: 0` benchmark knob) takes one block per (query token, query
// head) with two passes over the keys, and adds the column sums atomically.
//
// `kvRounding` (a 16-bit engine's pool type) rounds K and V to bf16 or f16 wherever they are read: the
// tensor-core kernels round each K and V tile once in shared memory. A rounded value is exact in TF32, so
// it needs no low part and each multiply takes two products instead of three (hi x hi + lo x hi of the
// other, unrounded operand).
//
// `productRounding` (what a 16-bit engine asks for) rounds Q, K, V and the probabilities: a conversion
// kernel writes Q, K and V in that type into the workspace once, and the 16-bit kernel multiplies on
// mma.sync.m16n8k16 with f32 accumulation, FlashAttention-2 style (Q fragments in registers, K by
// ldmatrix, V by ldmatrix.trans, the probabilities packed to the type in registers); a 16-bit column
// kernel sums the accumulated scores (and window sums) likewise. The window kernel reads the f32 inputs
// and rounds Q as it loads it, so every score is the rounded Q and K's.
#include <type_traits>

#include "../common.h"
#include "dtype-convert.cuh"
#include "kernels.h"
#include "tensor-core.cuh"
#include "wgmma.cuh"

namespace fairkv {
namespace {
constexpr int kThreads = 128;

/**
 * `x` rounded to bf16 (`mode` 1) or f16 (2), as an f32 (exact in TF32); `x` itself for 0. bf16 by integer
 * round-to-nearest-even (a NaN stays one): the conversion instruction runs at a fraction of the integer rate.
 */
__device__ __forceinline__ float roundKv(float x, int mode) {
  if (mode == 1) {
    const unsigned u = __float_as_uint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return x;
    return __uint_as_float((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
  }
  if (mode == 2) return __half2float(__float2half_rn(x));
  return x;
}

/** `a . b` over `n` elements, `b` (a K row) rounded by `mode` ({@link roundKv}). */
__device__ __forceinline__ float dotRow(const float* __restrict__ a, const float* __restrict__ b, int n, int mode) {
  float sum = 0.f;
  for (int i = 0; i < n; ++i) sum = fmaf(a[i], roundKv(b[i], mode), sum);
  return sum;
}

__global__ void __launch_bounds__(kThreads) prefillAttentionKernel(PrefillAttentionParams p) {
  const int t = blockIdx.x;
  const int head = blockIdx.y;
  const int D = p.headDim;
  const int groupSize = p.queryHeadCount / p.kvHeadCount;
  const int kvHead = head / groupSize;
  extern __shared__ float shared[];
  float* sQuery = shared;         // [D]
  float* sOut = sQuery + D;       // [D]
  float* sProb = sOut + D;        // [kThreads]
  __shared__ float sReduceMax[kThreads], sReduceSum[kThreads];
  __shared__ float sMax, sSum;

  const long long queryOffset = (static_cast<long long>(t) * p.queryHeadCount + head) * D;
  for (int d = threadIdx.x; d < D; d += kThreads) {
    sQuery[d] = roundKv(p.query[queryOffset + d], p.productRounding);
    sOut[d] = 0.f;
  }
  __syncthreads();
  const long long kvStride = static_cast<long long>(p.kvHeadCount) * D;
  const float* keyBase = p.key + static_cast<long long>(kvHead) * D;
  const float* valueBase = p.value + static_cast<long long>(kvHead) * D;

  float localMax = -INFINITY;
  float localSum = 0.f;
  for (int k = threadIdx.x; k <= t; k += kThreads) {
    const float s = p.scale * dotRow(sQuery, keyBase + k * kvStride, D, p.kvRounding);
    if (s > localMax) {
      localSum = localSum * expf(localMax - s) + 1.f;
      localMax = s;
    } else {
      localSum += expf(s - localMax);
    }
  }
  sReduceMax[threadIdx.x] = localMax;
  sReduceSum[threadIdx.x] = localSum;
  __syncthreads();
  if (threadIdx.x == 0) {
    float maximum = -INFINITY;
    for (int i = 0; i < kThreads; ++i) maximum = fmaxf(maximum, sReduceMax[i]);
    float sum = 0.f;
    for (int i = 0; i < kThreads; ++i)
      if (sReduceMax[i] != -INFINITY) sum += sReduceSum[i] * expf(sReduceMax[i] - maximum);
    sMax = maximum;
    sSum = sum;
  }
  __syncthreads();
  const float maximum = sMax;
  const float inverseSum = 1.f / sSum;
  const int windowRow = t - (p.tokenCount - p.windowSize);
  float* windowOut = (p.windowSize > 0 && windowRow >= 0 && p.windowScores != nullptr)
                         ? p.windowScores + (static_cast<long long>(head) * p.windowSize + windowRow) * p.tokenCount
                         : nullptr;

  for (int tile = 0; tile <= t; tile += kThreads) {
    const int k = tile + threadIdx.x;
    float probability = 0.f;
    if (k <= t) probability = expf(p.scale * dotRow(sQuery, keyBase + k * kvStride, D, p.kvRounding) - maximum) * inverseSum;
    sProb[threadIdx.x] = roundKv(probability, p.productRounding);  // as V's products take it
    if (windowOut != nullptr && k <= t) windowOut[k] = probability;
    if (p.accumulatedScores != nullptr && k <= t)
      atomicAdd(p.accumulatedScores + static_cast<long long>(head) * p.tokenCount + k, probability);
    if (p.windowScoreSums != nullptr && windowRow >= 0 && k <= t)
      atomicAdd(p.windowScoreSums + static_cast<long long>(head) * p.tokenCount + k, probability);
    __syncthreads();
    const int count = min(kThreads, t + 1 - tile);
    for (int d = threadIdx.x; d < D; d += kThreads) {
      float acc = sOut[d];
      for (int j = 0; j < count; ++j)
        acc = fmaf(sProb[j], roundKv(valueBase[(tile + j) * kvStride + d], p.kvRounding), acc);
      sOut[d] = acc;
    }
    __syncthreads();
  }
  if (windowOut != nullptr)
    for (int k = t + 1 + threadIdx.x; k < p.tokenCount; k += kThreads) windowOut[k] = 0.f;
  for (int d = threadIdx.x; d < D; d += kThreads) p.output[queryOffset + d] = sOut[d];
}

// ---- tensor-core kernel -------------------------------------------------------------------------

constexpr int kTileRows = 64;  // query rows per block (4 warps x 16)
constexpr int kTileKeys = 64;  // keys per K / V tile (32 measured the same; bench/cuda-prefill-attention/NOTES.md)
static_assert(kTileRows % kTileKeys == 0 && kTileKeys % 16 == 0, "key tiles divide query tiles");
constexpr int kMmaWarps = 4;
constexpr int kMmaThreads = kMmaWarps * 32;
constexpr float kLog2E = 1.4426950408889634f;

/** Rows whose log-sum-exp the workspace keeps (the last ones): every row for accumulated scores, else the window. */
__host__ __device__ __forceinline__ int lseRowCount(const PrefillAttentionParams& p) {
  return p.accumulatedScores != nullptr ? p.tokenCount : p.windowSize;
}

/**
 * Rows [first, first + Rows) of a `[tokenCount][heads][D]` f32 tensor (`base` at the head) into shared
 * rows of `D + 4` floats (the padding keeps every fragment load below free of bank conflicts); rows
 * past the prompt are zero-filled.
 */
template <int D, int Rows>
__device__ __forceinline__ void loadTileRows(float* shared, const float* base, long long rowStride, int first,
                                             int tokenCount) {
  constexpr int kUnits = D / 4;  // 16-byte copies per row
  constexpr int kStride = D + 4;
  for (int i = threadIdx.x; i < Rows * kUnits; i += kMmaThreads) {
    const int r = i / kUnits;
    const int unit = i % kUnits;
    const int row = first + r;
    const bool valid = row < tokenCount;
    copyAsync16(shared + r * kStride + unit * 4, base + (valid ? row : 0) * rowStride + unit * 4, valid);
  }
}

/**
 * Rounds, by `mode` ({@link roundKv}), the tile rows this thread copied with {@link loadTileRows} (same
 * units, same thread): call it after this thread's wait for the tile's copies and before the barrier that
 * lets every warp read it. Each K and V element is then rounded once per block, not once per use.
 */
template <int D, int Rows>
__device__ __forceinline__ void roundTileRows(float* shared, int mode) {
  constexpr int kUnits = D / 4;
  constexpr int kStride = D + 4;
  for (int i = threadIdx.x; i < Rows * kUnits; i += kMmaThreads) {
    float4* unit = reinterpret_cast<float4*>(shared + (i / kUnits) * kStride + (i % kUnits) * 4);
    float4 v = *unit;
    v.x = roundKv(v.x, mode);
    v.y = roundKv(v.y, mode);
    v.z = roundKv(v.z, mode);
    v.w = roundKv(v.w, mode);
    *unit = v;
  }
}

/** Where a tensor-core block and lane are: its query head's kv head, strides, and the m16n8k8 lane (4g + t). */
struct MmaPlace {
  int head, kvHead, warp, lane, g, t;
  long long queryStride, kvStride;
  __device__ MmaPlace(const PrefillAttentionParams& p, int headDim)
      : head(blockIdx.y),
        kvHead(blockIdx.y / (p.queryHeadCount / p.kvHeadCount)),
        warp(threadIdx.x >> 5),
        lane(threadIdx.x & 31),
        g((threadIdx.x & 31) >> 2),
        t(threadIdx.x & 3),
        queryStride(static_cast<long long>(p.queryHeadCount) * headDim),
        kvStride(static_cast<long long>(p.kvHeadCount) * headDim) {}
};

/** Which operand of {@link scoreTile} holds K rows rounded by `kvRounding` (exact in TF32: no low part). */
enum class Rounded { None, A, B };

/** A product of TF32-split operands where one operand is exact (`Rounded`): two MMAs; else the three of mmaSplitTf32. */
template <Rounded R>
__device__ __forceinline__ void mmaRoundedTf32(float (&d)[4], const unsigned (&aHi)[4], const unsigned (&aLo)[4],
                                               const unsigned (&bHi)[2], const unsigned (&bLo)[2]) {
  if constexpr (R == Rounded::B) {
    mmaTf32(d, aLo, bHi[0], bHi[1]);
    mmaTf32(d, aHi, bHi[0], bHi[1]);
  } else if constexpr (R == Rounded::A) {
    mmaTf32(d, aHi, bLo[0], bLo[1]);
    mmaTf32(d, aHi, bHi[0], bHi[1]);
  } else {
    mmaSplitTf32(d, aHi, aLo, bHi, bLo);
  }
}

/** An operand's TF32 parts: `x` split (hi + lo), or, when it was rounded (exact in TF32), itself and no lo. */
template <bool IsRounded>
__device__ __forceinline__ void operandTf32(float x, unsigned& hi, unsigned& lo) {
  if constexpr (IsRounded) {
    hi = __float_as_uint(x);
    lo = 0u;
  } else {
    splitTf32(x, hi, lo);
  }
}

/**
 * `score = A B^T` for the warp's 16 rows of `a` (shared, `D + 4` floats per row) and the first
 * `8 * Fragments` rows of `b` (same layout), as m16n8k8 C fragments (lane = 4g + t holds rows g and g + 8,
 * columns 2t and 2t + 1 of each 8-column fragment), f32 accuracy from TF32 split three ways; the operand
 * `R` names (K rows already rounded in shared memory, {@link roundTileRows}) is taken whole, in two products.
 */
template <int D, int Fragments, Rounded R = Rounded::None>
__device__ __forceinline__ void scoreTile(float (&score)[Fragments][4], const float* a, const float* b, int lane) {
  constexpr int kStride = D + 4;
#pragma unroll
  for (int n = 0; n < Fragments; ++n) score[n][0] = score[n][1] = score[n][2] = score[n][3] = 0.f;
#pragma unroll 4
  for (int k = 0; k < D; k += 8) {
    unsigned aHi[4], aLo[4];
    // ldmatrix on 32-bit elements: an 8 x 8 b16 matrix is 8 rows of 4 floats, and lane 4g + t receives
    // float t of row g, which is the m16n8k8 TF32 fragment layout
    unsigned fragment[4];
    loadMatrixX4(fragment, a + ((lane & 7) + ((lane >> 3) & 1) * 8) * kStride + k + (lane >> 4) * 4);
#pragma unroll
    for (int i = 0; i < 4; ++i) operandTf32<R == Rounded::A>(__uint_as_float(fragment[i]), aHi[i], aLo[i]);
#pragma unroll
    for (int n = 0; n < Fragments; n += 2) {
      unsigned bPair[4];  // b0, b1 of fragment n, then of n + 1
      loadMatrixX4(bPair, b + (n * 8 + (lane & 7) + (lane >> 4) * 8) * kStride + k + ((lane >> 3) & 1) * 4);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        unsigned bHi[2], bLo[2];
        operandTf32<R == Rounded::B>(__uint_as_float(bPair[2 * j]), bHi[0], bLo[0]);
        operandTf32<R == Rounded::B>(__uint_as_float(bPair[2 * j + 1]), bHi[1], bLo[1]);
        mmaRoundedTf32<R>(score[n + j], aHi, aLo, bHi, bLo);
      }
    }
  }
}

/**
 * The online softmax of one key tile (first key `keyBegin`) for a warp's rows g and g + 8 (`rowA`, `rowB`):
 * masks the keys after each row where the tile reaches the diagonal of the query tile at `first`, turns
 * the scores into probabilities against the new running maximum (log2 domain), adds them to this lane's
 * partial sums and rescales the output accumulators by the maximum's change.
 */
/** 2^x; `Approximate`: the bare ex2.approx.ftz (subnormal results flushed to zero), for 16-bit probabilities. */
template <bool Approximate>
__device__ __forceinline__ float exp2Of(float x) {
  if constexpr (Approximate) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
  } else {
    return exp2f(x);
  }
}

template <int KeyFragments, int DimFragments, bool ApproximateExp = false>
__device__ __forceinline__ void softmaxTile(float (&score)[KeyFragments][4], float (&out)[DimFragments][4],
                                            float (&runningMax)[2], float (&partialSum)[2], int keyBegin, int first,
                                            int rowA, int rowB, int t, float scaleLog2) {
  if (keyBegin + KeyFragments * 8 > first) {  // on the diagonal: keys after the row (and past the prompt) are masked
#pragma unroll
    for (int n = 0; n < KeyFragments; ++n)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int key = keyBegin + n * 8 + 2 * t + (c & 1);
        if (key > (c < 2 ? rowA : rowB)) score[n][c] = -INFINITY;
      }
  }
  float tileMax[2] = {runningMax[0], runningMax[1]};
#pragma unroll
  for (int n = 0; n < KeyFragments; ++n) {
    tileMax[0] = fmaxf(tileMax[0], fmaxf(score[n][0], score[n][1]) * scaleLog2);
    tileMax[1] = fmaxf(tileMax[1], fmaxf(score[n][2], score[n][3]) * scaleLog2);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    tileMax[r] = fmaxf(tileMax[r], __shfl_xor_sync(0xffffffffu, tileMax[r], 1));
    tileMax[r] = fmaxf(tileMax[r], __shfl_xor_sync(0xffffffffu, tileMax[r], 2));
  }
  // every row has key 0 unmasked, so tileMax is finite from the first tile on
  const float rescale[2] = {exp2Of<ApproximateExp>(runningMax[0] - tileMax[0]), exp2Of<ApproximateExp>(runningMax[1] - tileMax[1])};
  runningMax[0] = tileMax[0];
  runningMax[1] = tileMax[1];
  partialSum[0] *= rescale[0];
  partialSum[1] *= rescale[1];
#pragma unroll
  for (int n = 0; n < KeyFragments; ++n) {
    score[n][0] = exp2Of<ApproximateExp>(fmaf(score[n][0], scaleLog2, -tileMax[0]));
    score[n][1] = exp2Of<ApproximateExp>(fmaf(score[n][1], scaleLog2, -tileMax[0]));
    score[n][2] = exp2Of<ApproximateExp>(fmaf(score[n][2], scaleLog2, -tileMax[1]));
    score[n][3] = exp2Of<ApproximateExp>(fmaf(score[n][3], scaleLog2, -tileMax[1]));
    partialSum[0] += score[n][0] + score[n][1];
    partialSum[1] += score[n][2] + score[n][3];
  }
#pragma unroll
  for (int n = 0; n < DimFragments; ++n) {
    out[n][0] *= rescale[0];
    out[n][1] *= rescale[0];
    out[n][2] *= rescale[1];
    out[n][3] *= rescale[1];
  }
}

/**
 * The end of a tensor-core block: a warp's rows g and g + 8 (`rowA`, `rowB`) of the output, normalised by
 * their sums (`partialSum` holds this lane's columns; summed over the quad here), and, for the last
 * lseRowCount rows, their log-sum-exp (log2 domain) for the window and column kernels.
 */
template <int D>
__device__ __forceinline__ void writeRows(const PrefillAttentionParams& p, float* rowLse, const float (&out)[D / 8][4],
                                          const float (&partialSum)[2], const float (&runningMax)[2], int rowA,
                                          int rowB, int head, int t, long long queryStride) {
  float sum[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    sum[r] = partialSum[r];
    sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], 1);
    sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], 2);
  }
  const int lseRows = lseRowCount(p);  // the last lseRows rows keep their log-sum-exp
  const int lseFirst = p.tokenCount - lseRows;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = r == 0 ? rowA : rowB;
    if (row >= p.tokenCount) continue;
    const float inverse = 1.f / sum[r];
    float* output = p.output + static_cast<long long>(row) * queryStride + static_cast<long long>(head) * D + 2 * t;
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      *reinterpret_cast<float2*>(output + n * 8) = make_float2(out[n][2 * r] * inverse, out[n][2 * r + 1] * inverse);
    if (t == 0 && row >= lseFirst)
      rowLse[static_cast<long long>(head) * lseRows + (row - lseFirst)] = runningMax[r] + log2f(sum[r]);
  }
}

// ---- 16-bit kernel (productRounding) -------------------------------------------------------------

/** Shared row stride of the 16-bit tiles: D + 8 elements, so the 8 rows of an ldmatrix fall on distinct banks. */
template <int D>
__host__ __device__ constexpr int halfStride() {
  return D + 8;
}

/** Rows [first, first + Rows) of a `[tokenCount][heads][D]` 16-bit tensor (`base` at the head) into shared memory; rows past the prompt are zero. */
template <int D, int Rows, typename T>
__device__ __forceinline__ void loadHalfRows(T* shared, const T* base, long long rowStride, int first, int tokenCount) {
  constexpr int kUnits = D / 8;  // 16-byte copies per row
  for (int i = threadIdx.x; i < Rows * kUnits; i += kMmaThreads) {
    const int r = i / kUnits;
    const int unit = i % kUnits;
    const int row = first + r;
    const bool valid = row < tokenCount;
    copyAsync16(shared + r * halfStride<D>() + unit * 8, base + (valid ? row : 0) * rowStride + unit * 8, valid);
  }
}

/** A warp's 16 rows of a 16-bit shared tile (`rows`: its first, rows `halfStride<D>()` apart) as m16n8k16 A fragments, one per k-step. */
template <int D, typename T>
__device__ __forceinline__ void loadRowFragments(unsigned (&fragment)[D / 16][4], const T* rows, int lane) {
#pragma unroll
  for (int s = 0; s < D / 16; ++s)
    loadMatrixX4(fragment[s], rows + ((lane & 7) + ((lane >> 3) & 1) * 8) * halfStride<D>() + s * 16 + (lane >> 4) * 8);
}

/**
 * `score = A B^T` on 16-bit tensor cores: A the warp's 16 rows as {@link loadRowFragments} gave them, B the
 * first `8 * Fragments` rows of the 16-bit shared tile `b` (by ldmatrix), as m16n8k16 C fragments (lane
 * 4g + t holds rows g and g + 8, columns 2t and 2t + 1 of each 8-column fragment), accumulated in f32.
 */
template <int D, int Fragments, typename T>
__device__ __forceinline__ void halfScoreTile(float (&score)[Fragments][4], const unsigned (&a)[D / 16][4], const T* b,
                                              int lane) {
#pragma unroll
  for (int n = 0; n < Fragments; ++n) score[n][0] = score[n][1] = score[n][2] = score[n][3] = 0.f;
#pragma unroll
  for (int s = 0; s < D / 16; ++s) {
#pragma unroll
    for (int n = 0; n < Fragments; n += 2) {
      unsigned fragment[4];  // b0, b1 of fragment n, then of n + 1
      loadMatrixX4(fragment, b + (n * 8 + (lane & 7) + (lane >> 4) * 8) * halfStride<D>() + s * 16 + ((lane >> 3) & 1) * 8);
      MmaOps<T>::mma(score[n], a[s], fragment[0], fragment[1]);
      MmaOps<T>::mma(score[n + 1], a[s], fragment[2], fragment[3]);
    }
  }
}

// ---- mma.sync kernels: operand policies ----------------------------------------------------------

/**
 * The f32 operands of the mma.sync kernels: tiles of `D + 4` floats per row copied from the f32 inputs,
 * products on TF32 split three ways, or two where K and V were rounded by `kvRounding` ({@link
 * roundTileRows}: exact in TF32, no low part). The warp's 16 A rows are read from shared memory at every tile.
 */
template <int D, bool RoundedKv>
struct Tf32Operands {
  using Element = float;
  static constexpr int kStride = D + 4;
  static constexpr const char* kName = "prefill-attention tensor-core kernel";
  /** Rows [first, first + Rows) of a `[tokenCount][heads][D]` tensor (`base` at the head) into a shared tile. */
  template <int Rows>
  __device__ static void load(float* tile, const float* base, long long rowStride, int first, int tokenCount) {
    loadTileRows<D, Rows>(tile, base, rowStride, first, tokenCount);
  }
  /** A tile of K or V rows whose copies this thread waited for, before the barrier that lets every warp read it. */
  template <int Rows>
  __device__ static void arrived(float* tile, int kvRounding) {
    if constexpr (RoundedKv) roundTileRows<D, Rows>(tile, kvRounding);
  }
  /** The warp's 16 A rows as the products take them: their place in shared memory. */
  struct RowOperand {
    const float* rows;
  };
  __device__ static void takeRows(RowOperand& a, const float* rows, int) { a.rows = rows; }
  /** `score = A B^T` over 8-column fragments of `b`'s rows; `KeysAreA`: the A rows are the (rounded) keys, else B's. */
  template <bool KeysAreA, int Fragments>
  __device__ static void scores(float (&score)[Fragments][4], const RowOperand& a, const float* b, int lane) {
    scoreTile<D, Fragments, !RoundedKv ? Rounded::None : KeysAreA ? Rounded::A : Rounded::B>(score, a.rows, b, lane);
  }
  /**
   * A key tile's probabilities as A fragments of P x V, split once: fragment column t is key 2t, column t + 4
   * key 2t + 1 of each 8-key slice.
   */
  struct Probabilities {
    unsigned hi[kTileKeys / 8][4], lo[kTileKeys / 8][4];
  };
  __device__ static void takeProbabilities(Probabilities& probability, const float (&score)[kTileKeys / 8][4]) {
#pragma unroll
    for (int kk = 0; kk < kTileKeys / 8; ++kk) {
      splitTf32(score[kk][0], probability.hi[kk][0], probability.lo[kk][0]);
      splitTf32(score[kk][2], probability.hi[kk][1], probability.lo[kk][1]);
      splitTf32(score[kk][1], probability.hi[kk][2], probability.lo[kk][2]);
      splitTf32(score[kk][3], probability.hi[kk][3], probability.lo[kk][3]);
    }
  }
  /** `out += P V` for the V tile `value`: the V fragment reads its rows in the probabilities' key order. */
  __device__ static void addValues(float (&out)[D / 8][4], const Probabilities& probability, const float* value,
                                   int lane) {
    const int g = lane >> 2, t = lane & 3;
    constexpr int kPart = 4;  // output n-fragments (32 head dims) per pass, for registers
#pragma unroll
    for (int pass = 0; pass < D / 8 / kPart; ++pass) {
      float part[kPart][4];
#pragma unroll
      for (int n = 0; n < kPart; ++n) part[n][0] = part[n][1] = part[n][2] = part[n][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < kTileKeys / 8; ++kk) {
        const float* valueEven = value + (kk * 8 + 2 * t) * kStride + pass * kPart * 8 + g;
        const float* valueOdd = valueEven + kStride;
#pragma unroll
        for (int n = 0; n < kPart; ++n) {
          unsigned bHi[2], bLo[2];
          operandTf32<RoundedKv>(valueEven[n * 8], bHi[0], bLo[0]);
          operandTf32<RoundedKv>(valueOdd[n * 8], bHi[1], bLo[1]);
          mmaRoundedTf32<RoundedKv ? Rounded::B : Rounded::None>(part[n], probability.hi[kk], probability.lo[kk], bHi,
                                                                  bLo);
        }
      }
#pragma unroll
      for (int n = 0; n < kPart; ++n)
#pragma unroll
        for (int c = 0; c < 4; ++c) out[pass * kPart + n][c] += part[n][c];
    }
  }
};

/**
 * The 16-bit operands of the mma.sync kernels (productRounding: Q, K and V already rounded to `T` in the
 * workspace), FlashAttention-2 style on mma.sync.m16n8k16 with f32 accumulation: the warp's 16 A rows stay
 * in registers as fragments, B rows come by ldmatrix, V by ldmatrix.trans, and the probabilities of two
 * score fragments are packed to `T` as one A fragment of P x V.
 */
template <int D, typename T>
struct HalfOperands {
  using Element = T;
  static constexpr int kStride = halfStride<D>();
  static constexpr const char* kName = "prefill-attention 16-bit tensor-core kernel";
  template <int Rows>
  __device__ static void load(T* tile, const T* base, long long rowStride, int first, int tokenCount) {
    loadHalfRows<D, Rows>(tile, base, rowStride, first, tokenCount);
  }
  template <int Rows>
  __device__ static void arrived(T*, int) {}  // rounded already
  struct RowOperand {
    unsigned fragment[D / 16][4];
  };
  __device__ static void takeRows(RowOperand& a, const T* rows, int lane) { loadRowFragments<D>(a.fragment, rows, lane); }
  template <bool KeysAreA, int Fragments>
  __device__ static void scores(float (&score)[Fragments][4], const RowOperand& a, const T* b, int lane) {
    halfScoreTile<D>(score, a.fragment, b, lane);
  }
  struct Probabilities {
    unsigned packed[kTileKeys / 16][4];
  };
  __device__ static void takeProbabilities(Probabilities& probability, const float (&score)[kTileKeys / 8][4]) {
#pragma unroll
    for (int n = 0; n < kTileKeys / 8; ++n) {
      probability.packed[n / 2][(n & 1) * 2 + 0] = packPair<T>(score[n][0], score[n][1]);  // row g
      probability.packed[n / 2][(n & 1) * 2 + 1] = packPair<T>(score[n][2], score[n][3]);  // row g + 8
    }
  }
  __device__ static void addValues(float (&out)[D / 8][4], const Probabilities& probability, const T* value, int lane) {
#pragma unroll
    for (int n = 0; n < D / 8; n += 2) {
      float part[2][4] = {};
#pragma unroll
      for (int kk = 0; kk < kTileKeys / 16; ++kk) {
        unsigned b[4];  // b0, b1 of dim fragment n, then of n + 1
        loadMatrixX4Trans(b, value + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kStride + n * 8 + (lane >> 4) * 8);
        MmaOps<T>::mma(part[0], probability.packed[kk], b[0], b[1]);
        MmaOps<T>::mma(part[1], probability.packed[kk], b[2], b[3]);
      }
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        out[n][c] += part[0][c];
        out[n + 1][c] += part[1][c];
      }
    }
  }
};

/**
 * The mma.sync attention kernel, on `Ops`'s operands ({@link Tf32Operands}, {@link HalfOperands}): one block
 * per (64-row query tile, query head), heaviest tiles first. Warp w owns rows 16w..16w+15 of the tile
 * (mma fragments as the PTX ISA lays them out: lane = 4g + t). Q once, then K and V each one 64-key tile
 * ahead by cp.async, keys up to the diagonal; an online softmax per row in registers; the probabilities
 * become the A operand of P x V without leaving registers. Each key tile's P x V goes into fresh
 * accumulators that are then added to the output in f32: the tensor cores' f32 accumulation rounds toward
 * zero, and one running accumulator of one sign would gather that bias over the whole prompt (measured on
 * an H100: relative error 1.4e-4 at 16K tokens against 2.8e-6 for the element kernel).
 */
template <int D, typename Ops>
__global__ void __launch_bounds__(kMmaThreads, 2)
    prefillAttentionMmaKernel(PrefillAttentionParams p, const typename Ops::Element* query,
                              const typename Ops::Element* key, const typename Ops::Element* value, float* rowLse) {
  using E = typename Ops::Element;
  constexpr int kStride = Ops::kStride;
  constexpr int kDimFragments = D / 8;  // n-fragments of the output
  extern __shared__ __align__(16) unsigned char mmaTileMemory[];
  E* sQuery = reinterpret_cast<E*>(mmaTileMemory);  // [kTileRows][kStride]
  E* sKey = sQuery + kTileRows * kStride;           // [kTileKeys][kStride]
  E* sValue = sKey + kTileKeys * kStride;           // [kTileKeys][kStride]

  const int tokenCount = p.tokenCount;
  const int tile = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
  const int first = tile * kTileRows;
  const MmaPlace place(p, D);
  const auto [head, kvHead, warp, lane, g, t, queryStride, kvStride] = place;
  const E* keyBase = key + static_cast<long long>(kvHead) * D;
  const E* valueBase = value + static_cast<long long>(kvHead) * D;

  // cp.async groups in order: [Q, K0] [V0] [K1] [V1] ...; each wait leaves the newest group pending
  Ops::template load<kTileRows>(sQuery, query + static_cast<long long>(head) * D, queryStride, first, tokenCount);
  Ops::template load<kTileKeys>(sKey, keyBase, kvStride, 0, tokenCount);
  commitAsync();
  Ops::template load<kTileKeys>(sValue, valueBase, kvStride, 0, tokenCount);
  commitAsync();

  const float scaleLog2 = p.scale * kLog2E;
  const int rowA = first + warp * 16 + g;  // fragment rows g and g + 8
  const int rowB = rowA + 8;
  float out[kDimFragments][4];
#pragma unroll
  for (int n = 0; n < kDimFragments; ++n) out[n][0] = out[n][1] = out[n][2] = out[n][3] = 0.f;
  float runningMax[2] = {-INFINITY, -INFINITY};  // log2 domain (score * scale * log2 e)
  float partialSum[2] = {0.f, 0.f};              // this lane's columns only; summed over the quad at the end
  typename Ops::RowOperand queryRows;

  const int lastKeyTile = (first + kTileRows) / kTileKeys - 1;  // keys up to the tile's last row
  for (int keyTile = 0; keyTile <= lastKeyTile; ++keyTile) {
    waitAsync<1>();
    Ops::template arrived<kTileKeys>(sKey, p.kvRounding);
    __syncthreads();  // Q and this K tile are in
    if (keyTile == 0) Ops::takeRows(queryRows, sQuery + warp * 16 * kStride, lane);
    float score[kTileKeys / 8][4];
    Ops::template scores<false>(score, queryRows, sKey, lane);
    __syncthreads();  // every warp is done with this K tile
    if (keyTile < lastKeyTile) Ops::template load<kTileKeys>(sKey, keyBase, kvStride, (keyTile + 1) * kTileKeys, tokenCount);
    commitAsync();

    softmaxTile(score, out, runningMax, partialSum, keyTile * kTileKeys, first, rowA, rowB, t, scaleLog2);
    typename Ops::Probabilities probability;
    Ops::takeProbabilities(probability, score);

    waitAsync<1>();
    Ops::template arrived<kTileKeys>(sValue, p.kvRounding);
    __syncthreads();  // this V tile is in
    Ops::addValues(out, probability, sValue, lane);
    __syncthreads();  // every warp is done with this V tile
    if (keyTile < lastKeyTile)
      Ops::template load<kTileKeys>(sValue, valueBase, kvStride, (keyTile + 1) * kTileKeys, tokenCount);
    commitAsync();
  }
  waitAsync<0>();
  writeRows<D>(p, rowLse, out, partialSum, runningMax, rowA, rowB, head, t, queryStride);
}

// ---- 16-bit kernel on warpgroup MMAs (Hopper, head dims 64 and 128) --------------------------------

constexpr int kWgmmaRows = 64;  // query rows per block: wgmma's M, one warpgroup
constexpr int kWgmmaKeys = 64;  // keys per K / V tile (128 measured slower: 200 registers, one block per SM)
constexpr int kWgmmaThreads = 128;
static_assert(kWgmmaRows == 64 && kWgmmaKeys == 64, "wgmmaScoreTile takes 64-row tiles");
// K and V tiles in flight per block (two blocks of two warpgroups per SM leave room for no more at head dim
// 128; with four warpgroups, 3 or 4 measured no faster)
constexpr int kWgmmaStages = 2;

/** Makes this thread's shared-memory writes (cp.async or stores) visible to the async proxy wgmma reads through. */
__device__ __forceinline__ void fenceProxyAsync() {
#if FAIRKV_HAS_WGMMA
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

/**
 * `s` = the m64n64 D fragment of A B^T, A and B two 64-row tiles of D columns in shared memory (K-major,
 * 128-byte swizzle, D / 64 blocks of 8 KB each): the scores of 64 rows against 64 rows, on warpgroup
 * MMAs, waited for.
 */
template <typename T, int D>
__device__ __forceinline__ void wgmmaScoreTile(float (&s)[32], const unsigned char* a, const unsigned char* b) {
#pragma unroll
  for (int i = 0; i < 32; ++i) s[i] = 0.f;
#pragma unroll
  for (int i = 0; i < 32; ++i) wgmmaOperandFence(s[i]);
  wgmmaFence();
#pragma unroll
  for (int k = 0; k < D / 16; ++k) {
    const int block = k / 4;
    const int slice = 32 * (k % 4);
    Wgmma<T, 64>::mma(s, wgmmaDescriptor(a + block * 64 * 128 + slice), wgmmaDescriptor(b + block * 64 * 128 + slice));
  }
  wgmmaCommit();
  wgmmaWaitAll();
#pragma unroll
  for (int i = 0; i < 32; ++i) wgmmaOperandFence(s[i]);
}

/**
 * `Rows` rows of `Units` 16-byte units each (a row of `source`, `rowStride` elements apart) into shared
 * memory in wgmma's K-major layout with the 128-byte swizzle: blocks of 64 elements (128-byte rows, 8-row
 * groups of 1 KB), unit c of row r at c ^ (r & 7) of its row; rows at or past `validRows` are zero.
 */
template <int Rows, int Units, int Threads, typename T>
__device__ __forceinline__ void loadSwizzledRows(unsigned char* tile, const T* source, long long rowStride,
                                                 int validRows) {
  for (int i = threadIdx.x; i < Rows * Units; i += Threads) {
    const int r = i / Units;
    const int unit = i % Units;
    const bool valid = r < validRows;
    unsigned char* target = tile + (unit / 8) * Rows * 128 + r * 128 + ((unit % 8) ^ (r & 7)) * 16;
    copyAsync16(target, source + (valid ? r : 0) * rowStride + unit * 8, valid);
  }
}

/**
 * A `[tokenCount][heads][D]` f32 tensor rounded to `T` and transposed to `[heads][D][paddedTokens]`
 * (zero past tokenCount): 32 x 32 tiles through shared memory, a block per (32 tokens, 32 dims, head).
 */
template <typename T, int D>
__global__ void toHalfTransposedKernel(const float* __restrict__ source, T* __restrict__ target, int tokenCount,
                                       int heads, int paddedTokens) {
  __shared__ float tile[32][33];
  const int head = blockIdx.z;
  const int token0 = blockIdx.x * 32;
  const int dim0 = blockIdx.y * 32;
  for (int i = threadIdx.y; i < 32; i += blockDim.y) {
    const int token = token0 + i;
    tile[i][threadIdx.x] =
        token < tokenCount ? source[(static_cast<long long>(token) * heads + head) * D + dim0 + threadIdx.x] : 0.f;
  }
  __syncthreads();
  for (int i = threadIdx.y; i < 32; i += blockDim.y) {
    const float v = tile[threadIdx.x][i];
    target[(static_cast<long long>(head) * D + dim0 + i) * paddedTokens + token0 + threadIdx.x] = fromFloat<T>(v);
  }
}

/**
 * The 16-bit kernel on Hopper's warpgroup MMAs for head dims D = 64 and 128: one warpgroup per (64 query
 * rows, query head), `Heads` (1, 2 or 4) query heads of one kv head per block sharing its K and V tiles,
 * heaviest tiles first.
 * - Q comes by cp.async; 64-key tiles of K and of V transposed (`valueT`, `[kvHead][D][paddedTokens]`, so
 *   that P x V reads it K-major too) by bulk tensor copies (`keyMap`, `valueMap`), two tiles deep, all in
 *   the 128-byte-swizzled K-major layout. A tile's copies complete on its buffer's `full` barrier; each
 *   warp that has read the tile arrives on the buffer's `empty` barrier, and the last warpgroup's first
 *   thread waits for it before it asks for the tile two ahead into that buffer. No block-wide barrier in
 *   the loop, so the warpgroups need not run in step.
 * - S = Q K^T by `wgmma.m64n64k16` from shared memory, the online softmax in registers (the same per-row
 *   state as the mma.sync kernels, with the bare `ex2.approx.ftz`: probabilities below 2^-126 are rounded
 *   to T anyway), and P x V by `wgmma.m64nDk16` with the probabilities, rounded to T, as its A operand
 *   straight from registers, accumulated in place into the output. (The tensor cores' f32 accumulation
 *   rounds toward zero, which fresh accumulators per tile avoid in the f32 kernel; here its bias, at most
 *   about 1e-4 relative at 16K tokens, is far below the probabilities' rounding to T, and the measured
 *   error is the same: bench/cuda-prefill-attention/NOTES.md.)
 */
template <typename T, int D, int Heads>
// 128 registers: two blocks of two warpgroups per SM, or one of four (at two warpgroups, two blocks of 128
// registers were 1.16x faster than one of 163; bench/cuda-prefill-attention/NOTES.md, session 19)
__global__ void __launch_bounds__(kWgmmaThreads * Heads, 4 / Heads)
    prefillAttentionWgmmaKernel(PrefillAttentionParams p, const T* query, const __grid_constant__ CUtensorMap keyMap,
                                const __grid_constant__ CUtensorMap valueMap, float* rowLse) {
  constexpr int kThreads = kWgmmaThreads * Heads;
  constexpr int kKeyBytes = kWgmmaKeys * D * 2;
  constexpr int kValueBytes = D * kWgmmaKeys * 2;
  constexpr int kStages = kWgmmaStages;
  extern __shared__ __align__(1024) unsigned char wgmmaTileMemory[];
  unsigned char* base = wgmmaTileMemory + ((1024 - (sharedAddress(wgmmaTileMemory) & 1023)) & 1023);
  // (tiles of 64-element blocks: a 64 x D tile is D / 64 blocks of 8 KB)
  unsigned char* sKey = base;                                  // kStages buffers of 64 keys x D
  unsigned char* sValue = sKey + kStages * kKeyBytes;          // kStages buffers of D x 64 keys (V^T)
  unsigned char* sQueries = sValue + kStages * kValueBytes;    // per warpgroup: 64 rows x D
  auto* full = reinterpret_cast<unsigned long long*>(sQueries + Heads * kWgmmaRows * D * 2);  // per buffer
  unsigned long long* empty = full + kStages;                                                  // per buffer

  const int tokenCount = p.tokenCount;
  const int tile = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
  const int first = tile * kWgmmaRows;
  // warpgroup g takes query head Heads * blockIdx.y + g; the heads of a block share their kv head
  const int group = threadIdx.x / kWgmmaThreads;
  const int head = Heads * blockIdx.y + group;
  const int kvHead = head / (p.queryHeadCount / p.kvHeadCount);
  unsigned char* sQuery = sQueries + group * kWgmmaRows * D * 2;
  const int warp = (threadIdx.x % kWgmmaThreads) >> 5;
  const int lane = threadIdx.x & 31;
  const int t = lane & 3;
  const long long queryStride = static_cast<long long>(p.queryHeadCount) * D;
  const int lastKeyTile = (first + kWgmmaRows - 1) / kWgmmaKeys;  // the tile holding the query tile's last row
  const bool loader = threadIdx.x == (Heads - 1) * kWgmmaThreads;  // the last warpgroup's first thread
  const auto loadKeys = [&](int keyTile) {
    const int buffer = keyTile % kStages;
    barrierArriveExpecting(&full[buffer], kKeyBytes + kValueBytes);
#pragma unroll
    for (int block = 0; block < D / 64; ++block)
      tileLoad2d(sKey + buffer * kKeyBytes + block * kWgmmaKeys * 128, &keyMap, kvHead * D + 64 * block,
                 keyTile * kWgmmaKeys, &full[buffer]);
    tileLoad2d(sValue + buffer * kValueBytes, &valueMap, keyTile * kWgmmaKeys, kvHead * D, &full[buffer]);
  };
  if (threadIdx.x == 0) {
    for (int buffer = 0; buffer < kStages; ++buffer) {
      barrierInit(&full[buffer], 1);
      barrierInit(&empty[buffer], kThreads / 32);  // every warp arrives once it has read the tile
    }
  }
  __syncthreads();  // the barriers are initialised
  if (loader) {
    loadKeys(0);
    for (int keyTile = 1; keyTile < kStages && keyTile <= lastKeyTile; ++keyTile) loadKeys(keyTile);
  }
#pragma unroll
  for (int g = 0; g < Heads; ++g)
    loadSwizzledRows<kWgmmaRows, D / 8, kThreads>(
        sQueries + g * kWgmmaRows * D * 2,
        query + static_cast<long long>(first) * queryStride + (Heads * blockIdx.y + g) * D, queryStride,
        tokenCount - first);
  commitAsync();
  waitAsync<0>();
  fenceProxyAsync();
  __syncthreads();  // Q is in, for every thread and for the async proxy

  const float scaleLog2 = p.scale * kLog2E;
  const int rowA = first + 16 * warp + (lane >> 2);  // D-fragment rows: e bit 1 clear, set
  const int rowB = rowA + 8;
  float out[D / 8][4] = {};  // the m64nD D fragment: out[i / 4][i % 4] is register i
  float runningMax[2] = {-INFINITY, -INFINITY};
  float partialSum[2] = {0.f, 0.f};
  for (int keyTile = 0; keyTile <= lastKeyTile; ++keyTile) {
    const int buffer = keyTile % kStages;
    const unsigned parity = (keyTile / kStages) & 1;
    barrierWait(&full[buffer], parity);  // this tile's K and V have landed
    const unsigned char* keys = sKey + buffer * kKeyBytes;
    const unsigned char* values = sValue + buffer * kValueBytes;

    float s[kWgmmaKeys / 2];
    wgmmaScoreTile<T, D>(s, sQuery, keys);

    // register 8j + e of the m64nKeys D fragment holds row rowA (e bit 1 clear) or rowB, key 16j + 2t + (e & 1)
    // + 8 (e >> 2): as score[2j + (e >> 2)][e & 3], the mma.sync kernels' fragment layout
    float score[kWgmmaKeys / 8][4];
#pragma unroll
    for (int j = 0; j < kWgmmaKeys / 16; ++j)
#pragma unroll
      for (int e = 0; e < 8; ++e) score[2 * j + (e >> 2)][(e & 3)] = s[8 * j + e];
    softmaxTile<kWgmmaKeys / 8, D / 8, true>(score, out, runningMax, partialSum, keyTile * kWgmmaKeys, first, rowA,
                                             rowB, t, scaleLog2);
    // the probabilities, rounded to T, stay in registers as P x V's A operand: k-step j (keys 16j..16j+15) is
    // D registers 8j..8j+7 packed in pairs, i.e. score[2j] and score[2j + 1]
    unsigned probability[kWgmmaKeys / 16][4];
#pragma unroll
    for (int j = 0; j < kWgmmaKeys / 16; ++j) {
      probability[j][0] = packPair<T>(score[2 * j][0], score[2 * j][1]);
      probability[j][1] = packPair<T>(score[2 * j][2], score[2 * j][3]);
      probability[j][2] = packPair<T>(score[2 * j + 1][0], score[2 * j + 1][1]);
      probability[j][3] = packPair<T>(score[2 * j + 1][2], score[2 * j + 1][3]);
    }
    // the output (rescaled by softmaxTile) accumulates P x V in place: register i of the m64nD D fragment is
    // out[i / 4][i % 4]
    float(&accumulator)[D / 2] = *reinterpret_cast<float(*)[D / 2]>(&out[0][0]);
#pragma unroll
    for (int i = 0; i < D / 2; ++i) wgmmaOperandFence(accumulator[i]);
    wgmmaFence();
#pragma unroll
    for (int k = 0; k < kWgmmaKeys / 16; ++k)
      WgmmaRegisterA<T, D>::mma(accumulator, probability[k], wgmmaDescriptor(values + (k / 4) * D * 128 + 32 * (k % 4)));
    wgmmaCommit();
    wgmmaWaitAll();
#pragma unroll
    for (int i = 0; i < D / 2; ++i) wgmmaOperandFence(accumulator[i]);
    __syncwarp();
    if (lane == 0) barrierArrive(&empty[buffer]);  // this warp is done with the buffer
    if (loader && keyTile + kStages <= lastKeyTile) {
      barrierWait(&empty[buffer], parity);  // every warp is
      loadKeys(keyTile + kStages);
    }
  }
  writeRows<D>(p, rowLse, out, partialSum, runningMax, rowA, rowB, head, t, queryStride);
}

// ---- window scores from the row log-sum-exp -------------------------------------------------------

constexpr int kWindowKeys = 64;   // keys per block (16 threads x 4)
constexpr int kWindowChunk = 32;  // head dims per pass through shared memory

/**
 * `windowScores[head][w][k] = 2^(scale log2(e) q_t . k_k - lse_t)` for `t = T - W + w`, `k <= t`, and 0
 * after t: one block per (64 keys, head, `Rows` window rows), 16 x Rows/4 threads with 4 x 4 scores
 * each, f32 dot products from shared memory, 32 head dims at a time. Windows of up to 32 rows (SnapKV's
 * default) take 32-row blocks, so no block computes rows past the window.
 */
template <int D, int Rows>
__global__ void __launch_bounds__(16 * Rows / 4) prefillWindowScoresKernel(PrefillAttentionParams p, const float* rowLse) {
  constexpr int kThreadsPerBlock = 16 * Rows / 4;
  constexpr int kRowStep = Rows / 4;  // a thread's rows are ty, ty + kRowStep, ...
  constexpr int kStride = kWindowChunk + 1;
  __shared__ float sQuery[Rows * kStride];
  __shared__ float sKey[kWindowKeys * kStride];
  const int T = p.tokenCount;
  const int W = p.windowSize;
  const int head = blockIdx.y;
  const int kvHead = head / (p.queryHeadCount / p.kvHeadCount);
  const int keyFirst = blockIdx.x * kWindowKeys;
  const int windowFirst = blockIdx.z * Rows;    // window row index
  const int tokenFirst = T - W + windowFirst;  // its query token
  const int tx = threadIdx.x % 16;
  const int ty = threadIdx.x / 16;
  float dot[4][4] = {};
  if (keyFirst <= tokenFirst + Rows - 1) {  // otherwise every score of the block is masked
    const float* query = p.query + static_cast<long long>(head) * D;
    const float* key = p.key + static_cast<long long>(kvHead) * D;
    const long long queryStride = static_cast<long long>(p.queryHeadCount) * D;
    const long long kvStride = static_cast<long long>(p.kvHeadCount) * D;
    for (int chunk = 0; chunk < D; chunk += kWindowChunk) {
      for (int i = threadIdx.x; i < Rows * kWindowChunk; i += kThreadsPerBlock) {
        const int r = i / kWindowChunk;
        const int d = chunk + i % kWindowChunk;
        const int token = tokenFirst + r;
        sQuery[r * kStride + d - chunk] = token < T ? roundKv(query[token * queryStride + d], p.productRounding) : 0.f;
      }
      for (int i = threadIdx.x; i < kWindowKeys * kWindowChunk; i += kThreadsPerBlock) {
        const int r = i / kWindowChunk;
        const int d = chunk + i % kWindowChunk;
        const int keyRow = keyFirst + r;
        sKey[r * kStride + d - chunk] = keyRow < T ? roundKv(key[keyRow * kvStride + d], p.kvRounding) : 0.f;
      }
      __syncthreads();
#pragma unroll 8
      for (int d = 0; d < kWindowChunk; ++d) {
        float q[4], k[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          q[i] = sQuery[(ty + kRowStep * i) * kStride + d];
          k[i] = sKey[(tx + 16 * i) * kStride + d];
        }
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) dot[i][j] = fmaf(q[i], k[j], dot[i][j]);
      }
      __syncthreads();
    }
  }
  float* scores = p.windowScores + static_cast<long long>(head) * W * T;
  const float scaleLog2 = p.scale * kLog2E;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int w = windowFirst + ty + kRowStep * i;
    if (w >= W) continue;
    const int token = T - W + w;
    const int lseRows = lseRowCount(p);
    const float lse = rowLse[static_cast<long long>(head) * lseRows + (w + lseRows - W)];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int keyIndex = keyFirst + tx + 16 * j;
      if (keyIndex >= T) continue;
      scores[static_cast<long long>(w) * T + keyIndex] =
          keyIndex <= token ? exp2f(fmaf(dot[i][j], scaleLog2, -lse)) : 0.f;
    }
  }
}

/**
 * A column kernel's step: adds to this lane's two keys (`keyA`, `keyB`) the probabilities `2^(score x
 * scaleLog2 - lse)` of the query rows `rowFirst + local` its score fragments hold (rows before a key or past
 * the prompt add nothing).
 */
template <int RowFragments>
__device__ __forceinline__ void addColumnProbabilities(const float (&score)[RowFragments][4], float (&column)[2],
                                                       const float* lse, int rowFirst, int tokenCount, int keyA,
                                                       int keyB, int t, float scaleLog2) {
#pragma unroll
  for (int n = 0; n < RowFragments; ++n)
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int local = n * 8 + 2 * t + (c & 1);
      const int row = rowFirst + local;
      if (row < tokenCount && (c < 2 ? keyA : keyB) <= row)
        column[c >> 1] += exp2f(fmaf(score[n][c], scaleLog2, -lse[local]));
    }
}

/** A column kernel's end: each key's sum over the quad's lanes into `out` (the head's row of sums). */
__device__ __forceinline__ void writeColumnSums(float (&column)[2], float* out, int tokenCount, int keyA, int keyB,
                                                int t) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    column[r] += __shfl_xor_sync(0xffffffffu, column[r], 1);
    column[r] += __shfl_xor_sync(0xffffffffu, column[r], 2);
  }
  if (t == 0 && keyA < tokenCount) out[keyA] = column[0];
  if (t == 0 && keyB < tokenCount) out[keyB] = column[1];
}

/**
 * `sums[head][k] = sum over t >= max(k, rowStart) of 2^(scale log2(e) q_t . k_k - lse_t)`: the accumulated
 * scores (rowStart 0) or the window's column sums (rowStart T - W), on mma.sync tensor cores with `Ops`'s
 * operands ({@link Tf32Operands}, {@link HalfOperands}) as the attention's scores: one block of 4 warps per
 * (64 keys, head), keys as the A rows (warp w: keys 16w..16w+15), and the query rows from the block's first
 * key (or rowStart) to the end of the prompt streaming through shared memory in 64-row tiles with their
 * log-sum-exp (cp.async, one tile ahead) as the B rows. Each lane sums its two keys' probabilities over the
 * rows it holds, then over its quad.
 */
template <int D, typename Ops>
__global__ void __launch_bounds__(kMmaThreads, 2)
    prefillColumnSumsMmaKernel(PrefillAttentionParams p, const typename Ops::Element* query,
                               const typename Ops::Element* key, const float* rowLse, float* sums, int rowStart) {
  using E = typename Ops::Element;
  constexpr int kStride = Ops::kStride;
  constexpr int kRowFragments = kTileRows / 8;
  extern __shared__ __align__(16) unsigned char mmaTileMemory[];
  E* sKey = reinterpret_cast<E*>(mmaTileMemory);  // [64][kStride], then two row tiles of [64][kStride]
  const auto rows = [&](int buffer) { return sKey + (1 + buffer) * kTileRows * kStride; };
  __shared__ float sLse[2][kTileRows];
  const int tokenCount = p.tokenCount;
  const int keyFirst = blockIdx.x * kTileRows;  // the first blocks have the most rows: heaviest first
  const MmaPlace place(p, D);
  const auto [head, kvHead, warp, lane, g, t, queryStride, kvStride] = place;
  const E* queryBase = query + static_cast<long long>(head) * D;
  const int lseRows = lseRowCount(p);  // the last lseRows rows have their log-sum-exp
  const float* lse = rowLse + static_cast<long long>(head) * lseRows - (tokenCount - lseRows);  // indexed by row
  const auto loadRows = [&](int buffer, int rowFirst) {
    Ops::template load<kTileRows>(rows(buffer), queryBase, place.queryStride, rowFirst, tokenCount);
    if (threadIdx.x < kTileRows)
      sLse[buffer][threadIdx.x] = rowFirst + threadIdx.x < tokenCount ? lse[rowFirst + threadIdx.x] : 0.f;
  };
  Ops::template load<kTileRows>(sKey, key + static_cast<long long>(kvHead) * D, kvStride, keyFirst, tokenCount);
  const int start = max(keyFirst, rowStart);  // rows before the block's first key see none of its keys
  loadRows(0, start);
  commitAsync();

  const float scaleLog2 = p.scale * kLog2E;
  const int keyA = keyFirst + warp * 16 + g;  // fragment rows g and g + 8
  const int keyB = keyA + 8;
  float column[2] = {0.f, 0.f};
  typename Ops::RowOperand keys;
  const int rowTiles = (tokenCount - start + kTileRows - 1) / kTileRows;
  for (int tileIndex = 0; tileIndex < rowTiles; ++tileIndex) {
    const int buffer = tileIndex & 1;
    const int rowFirst = start + tileIndex * kTileRows;
    if (tileIndex + 1 < rowTiles) loadRows(buffer ^ 1, rowFirst + kTileRows);
    commitAsync();
    waitAsync<1>();
    if (tileIndex == 0) Ops::template arrived<kTileRows>(sKey, p.kvRounding);
    __syncthreads();  // this row tile (and the keys) are in
    if (tileIndex == 0) Ops::takeRows(keys, sKey + warp * 16 * kStride, lane);
    float score[kRowFragments][4];
    Ops::template scores<true>(score, keys, rows(buffer), lane);
    addColumnProbabilities(score, column, sLse[buffer], rowFirst, tokenCount, keyA, keyB, t, scaleLog2);
    __syncthreads();  // every warp is done with this buffer before it is refilled
  }
  waitAsync<0>();
  writeColumnSums(column, sums + static_cast<long long>(head) * tokenCount, tokenCount, keyA, keyB, t);
}

/**
 * {@link prefillColumnSumsMmaKernel} (16-bit operands) on Hopper's warpgroup MMAs (head dims 64 and 128): one warpgroup per
 * (64 keys, query head), the same sums. The keys are wgmma's A rows (64 x D, loaded once by bulk tensor
 * copies); the query rows from the block's first key (or rowStart) on stream as B in 64-row tiles by bulk
 * tensor copies of the workspace's Q, two tiles deep on full/empty transaction barriers as in
 * {@link prefillAttentionWgmmaKernel}: each warp releases a tile as soon as its scores are in registers, so
 * the next tile's copy overlaps the probabilities. Register 8j + e of the m64n64 D fragment is key keyA
 * (e bit 1 clear) or keyB and row 16j + 2t + (e & 1) + 8 (e >> 2) of the tile; each thread sums its two
 * keys' probabilities over its rows, then over its quad. The probabilities take the bare `ex2.approx.ftz`
 * as the attention's do (a probability below 2^-126 adds nothing to an f32 sum of ones), and only the
 * diagonal and last tiles test rows against keys and the prompt's end.
 */
template <typename T, int D>
__global__ void __launch_bounds__(kWgmmaThreads, 4)
    prefillColumnSumsWgmmaKernel(PrefillAttentionParams p, const __grid_constant__ CUtensorMap queryMap,
                                 const __grid_constant__ CUtensorMap keyMap, const float* rowLse, float* sums,
                                 int rowStart) {
  constexpr int kTileBytes = kWgmmaRows * D * 2;  // 64 rows x D, D / 64 blocks of 8 KB
  constexpr int kStages = kWgmmaStages;
  extern __shared__ __align__(1024) unsigned char columnTileMemory[];
  unsigned char* base = columnTileMemory + ((1024 - (sharedAddress(columnTileMemory) & 1023)) & 1023);
  unsigned char* sKey = base;                                                                  // 64 keys x D
  unsigned char* sRows = sKey + kTileBytes;                                                    // kStages row tiles
  auto* full = reinterpret_cast<unsigned long long*>(sRows + kStages * kTileBytes);            // per buffer
  unsigned long long* empty = full + kStages;                                                  // per buffer
  unsigned long long* keysIn = empty + kStages;

  const int tokenCount = p.tokenCount;
  const int keyFirst = blockIdx.x * kWgmmaKeys;  // the first blocks have the most rows: heaviest first
  const int head = blockIdx.y;
  const int kvHead = head / (p.queryHeadCount / p.kvHeadCount);
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int t = lane & 3;
  const int start = max(keyFirst, rowStart);  // rows before the block's first key see none of its keys
  const int rowTiles = (tokenCount - start + kWgmmaRows - 1) / kWgmmaRows;
  const bool loader = threadIdx.x == 0;
  const auto loadRows = [&](int tileIndex) {
    const int buffer = tileIndex % kStages;
    barrierArriveExpecting(&full[buffer], kTileBytes);
#pragma unroll
    for (int block = 0; block < D / 64; ++block)
      tileLoad2d(sRows + buffer * kTileBytes + block * kWgmmaRows * 128, &queryMap, head * D + 64 * block,
                 start + tileIndex * kWgmmaRows, &full[buffer]);
  };
  if (loader) {
    for (int buffer = 0; buffer < kStages; ++buffer) {
      barrierInit(&full[buffer], 1);
      barrierInit(&empty[buffer], kWgmmaThreads / 32);  // every warp arrives once its scores are in registers
    }
    barrierInit(keysIn, 1);
  }
  __syncthreads();  // the barriers are initialised
  if (loader) {
    barrierArriveExpecting(keysIn, kTileBytes);
#pragma unroll
    for (int block = 0; block < D / 64; ++block)
      tileLoad2d(sKey + block * kWgmmaKeys * 128, &keyMap, kvHead * D + 64 * block, keyFirst, keysIn);
    for (int tileIndex = 0; tileIndex < kStages && tileIndex < rowTiles; ++tileIndex) loadRows(tileIndex);
  }
  const int lseRows = lseRowCount(p);  // the last lseRows rows have their log-sum-exp
  const float* lse = rowLse + static_cast<long long>(head) * lseRows - (tokenCount - lseRows);  // indexed by row
  const float scaleLog2 = p.scale * kLog2E;
  const int keyA = keyFirst + 16 * warp + (lane >> 2);  // D-fragment rows: e bit 1 clear, set
  const int keyB = keyA + 8;
  float column[2] = {0.f, 0.f};
  barrierWait(keysIn, 0);
  for (int tileIndex = 0; tileIndex < rowTiles; ++tileIndex) {
    const int buffer = tileIndex % kStages;
    const unsigned parity = (tileIndex / kStages) & 1;
    const int rowFirst = start + tileIndex * kWgmmaRows;
    // this thread's rows' log-sum-exp, read while the tile's copy may still be in flight
    float rowLseOf[kWgmmaRows / 8][2];
#pragma unroll
    for (int i = 0; i < kWgmmaRows / 8; ++i)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int row = rowFirst + 8 * i + 2 * t + c;
        rowLseOf[i][c] = lse[min(row, tokenCount - 1)];  // rows past the prompt are left out below
      }
    barrierWait(&full[buffer], parity);  // this row tile has landed
    const unsigned char* rows = sRows + buffer * kTileBytes;
    float s[kWgmmaRows / 2];
    wgmmaScoreTile<T, D>(s, sKey, rows);  // the keys as A rows
    __syncwarp();
    if (lane == 0) barrierArrive(&empty[buffer]);  // this warp is done with the buffer
    if (loader && tileIndex + kStages < rowTiles) {
      barrierWait(&empty[buffer], parity);  // every warp is
      loadRows(tileIndex + kStages);
    }
    // only the tile on the diagonal and the prompt's last one have rows to leave out
    const bool masked = rowFirst < keyFirst + kWgmmaKeys || rowFirst + kWgmmaRows > tokenCount;
#pragma unroll
    for (int j = 0; j < kWgmmaRows / 16; ++j)
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const int row = rowFirst + 16 * j + 2 * t + (e & 1) + 8 * (e >> 2);
        const int r = (e >> 1) & 1;
        const float probability =
            exp2Of<true>(fmaf(s[8 * j + e], scaleLog2, -rowLseOf[2 * j + (e >> 2)][e & 1]));
        if (!masked || (row < tokenCount && (r == 0 ? keyA : keyB) <= row)) column[r] += probability;
      }
  }
  writeColumnSums(column, sums + static_cast<long long>(head) * tokenCount, tokenCount, keyA, keyB, t);
}

/**
 * The window-score kernel and, for the accumulated scores and the window's column sums, `columnSums(sums,
 * rowStart, what)`, after a tensor-core call's attention kernel wrote `rowLse`.
 */
template <int D, typename ColumnSums>
void launchPrefillScoreKernels(const PrefillAttentionParams& p, float* rowLse, cudaStream_t stream,
                               ColumnSums&& columnSums) {
  if (p.windowSize > 0 && p.windowScores != nullptr) {
    const int keyBlocks = (p.tokenCount + kWindowKeys - 1) / kWindowKeys;
    if (p.windowSize <= 32)
      prefillWindowScoresKernel<D, 32><<<dim3(keyBlocks, p.queryHeadCount, 1), 16 * 32 / 4, 0, stream>>>(p, rowLse);
    else
      prefillWindowScoresKernel<D, 64><<<dim3(keyBlocks, p.queryHeadCount, (p.windowSize + 63) / 64), 16 * 64 / 4, 0,
                                         stream>>>(p, rowLse);
    checkLaunch("prefill-attention window-score kernel");
  }
  if (p.accumulatedScores != nullptr) columnSums(p.accumulatedScores, 0, "prefill-attention accumulated-score kernel");
  if (p.windowScoreSums != nullptr && p.windowSize > 0)
    columnSums(p.windowScoreSums, p.tokenCount - p.windowSize, "prefill-attention window-sum kernel");
}

/** The score kernels of an mma.sync call: the window rows, and the column sums on `Ops`'s operands (its Q and K). */
template <int D, typename Ops>
void launchMmaScoreKernels(const PrefillAttentionParams& p, const typename Ops::Element* query,
                           const typename Ops::Element* key, float* rowLse, cudaStream_t stream) {
  const int tiles = (p.tokenCount + kTileRows - 1) / kTileRows;
  launchPrefillScoreKernels<D>(p, rowLse, stream, [&](float* sums, int rowStart, const char* what) {
    const size_t bytes = sizeof(typename Ops::Element) * 3 * kTileRows * Ops::kStride;
    checkCuda(cudaFuncSetAttribute(prefillColumnSumsMmaKernel<D, Ops>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   static_cast<int>(bytes)),
              "cudaFuncSetAttribute(prefill-attention column sums)");
    prefillColumnSumsMmaKernel<D, Ops>
        <<<dim3(tiles, p.queryHeadCount), kMmaThreads, bytes, stream>>>(p, query, key, rowLse, sums, rowStart);
    checkLaunch(what);
  });
}

/** The mma.sync attention kernel on `Ops`'s operands (Q, K and V as it reads them), then the score kernels. */
template <int D, typename Ops>
void launchMmaAttention(const PrefillAttentionParams& p, const typename Ops::Element* query,
                        const typename Ops::Element* key, const typename Ops::Element* value, float* rowLse,
                        cudaStream_t stream) {
  const size_t shared = sizeof(typename Ops::Element) * (kTileRows + 2 * kTileKeys) * Ops::kStride;
  // set on every launch (as the decode attention does): the attribute is per device, and device
  // workers call from several threads
  checkCuda(cudaFuncSetAttribute(prefillAttentionMmaKernel<D, Ops>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(shared)),
            "cudaFuncSetAttribute(prefill-attention tensor cores)");
  const int tiles = (p.tokenCount + kTileRows - 1) / kTileRows;
  prefillAttentionMmaKernel<D, Ops>
      <<<dim3(tiles, p.queryHeadCount), kMmaThreads, shared, stream>>>(p, query, key, value, rowLse);
  checkLaunch(Ops::kName);
  launchMmaScoreKernels<D, Ops>(p, query, key, rowLse, stream);
}

/** Bytes of the row log-sum-exp at the workspace's start, rounded up so that the 16-bit copies after it stay aligned. */
size_t lseWorkspaceBytes(const PrefillAttentionParams& p) {
  return (sizeof(float) * static_cast<size_t>(p.queryHeadCount) * static_cast<size_t>(lseRowCount(p)) + 255) / 256 * 256;
}

/** Elements of Q, then of K (and of V) in the workspace's 16-bit copies. */
long long queryElements(const PrefillAttentionParams& p) {
  return static_cast<long long>(p.tokenCount) * p.queryHeadCount * p.headDim;
}
long long kvElements(const PrefillAttentionParams& p) {
  return static_cast<long long>(p.tokenCount) * p.kvHeadCount * p.headDim;
}

/**
 * A productRounding call's workspace: the row log-sum-exp, then Q, K and V in the 16-bit type `T`, then V
 * transposed for the warpgroup-MMA kernel (prefillAttentionWorkspaceBytes). `convertQueryKey` rounds Q and
 * K, which every 16-bit kernel reads, into it (convertFloatTo, round to nearest even).
 */
template <typename T>
struct HalfWorkspace {
  float* rowLse;
  T *query, *key, *value, *valueT;
  HalfWorkspace(const PrefillAttentionParams& p, void* workspace)
      : rowLse(static_cast<float*>(workspace)),
        query(reinterpret_cast<T*>(static_cast<unsigned char*>(workspace) + lseWorkspaceBytes(p))),
        key(query + queryElements(p)),
        value(key + kvElements(p)),
        valueT(value + kvElements(p)) {}
  void convertQueryKey(const PrefillAttentionParams& p, cudaStream_t stream) const {
    convertFloatTo(p.query, query, kType, queryElements(p), stream);
    convertFloatTo(p.key, key, kType, kvElements(p), stream);
  }
  static constexpr DType kType = std::is_same_v<T, __nv_bfloat16> ? DType::BF16 : DType::F16;
};

/** productRounding: Q, K and V rounded to `T` into the workspace, then the 16-bit kernel and the score kernels. */
template <int D, typename T>
void launchPrefillAttentionHalf(const PrefillAttentionParams& p, void* workspace, cudaStream_t stream) {
  const HalfWorkspace<T> w(p, workspace);
  w.convertQueryKey(p, stream);
  convertFloatTo(p.value, w.value, w.kType, kvElements(p), stream);
  launchMmaAttention<D, HalfOperands<D, T>>(p, w.query, w.key, w.value, w.rowLse, stream);
}

/** Tokens of a transposed V row in the workspace: the prompt rounded up to whole key tiles. */
int paddedTokens(const PrefillAttentionParams& p) { return (p.tokenCount + kWgmmaKeys - 1) / kWgmmaKeys * kWgmmaKeys; }

/**
 * productRounding on Hopper: the warpgroup-MMA kernel, then the score kernels (the column sums on warpgroup
 * MMAs too). False, having launched nothing, where the driver cannot describe the workspace's K and V^T as
 * tensor maps.
 */
template <int D, typename T>
bool launchPrefillAttentionWgmma(const PrefillAttentionParams& p, void* workspace, cudaStream_t stream) {
  const HalfWorkspace<T> w(p, workspace);
  const int padded = paddedTokens(p);
  const long long kvRows = static_cast<long long>(p.kvHeadCount) * D;
  CUtensorMap keyMap{}, valueMap{};
  if (!swizzledRowsTensorMap(w.key, HalfWorkspace<T>::kType, kvRows, p.tokenCount, kWgmmaKeys, keyMap) ||
      !swizzledRowsTensorMap(w.valueT, HalfWorkspace<T>::kType, padded, kvRows, D, valueMap))
    return false;
  // the column sums read Q by bulk copies too; without its map they take the mma.sync kernel
  CUtensorMap queryMap{};
  const bool wgmmaColumns = swizzledRowsTensorMap(w.query, HalfWorkspace<T>::kType,
                                                  static_cast<long long>(p.queryHeadCount) * D, p.tokenCount,
                                                  kWgmmaRows, queryMap);
  w.convertQueryKey(p, stream);
  toHalfTransposedKernel<T, D><<<dim3(padded / 32, D / 32, p.kvHeadCount), dim3(32, 8), 0, stream>>>(
      p.value, w.valueT, p.tokenCount, p.kvHeadCount, padded);
  checkLaunch("prefill-attention 16-bit transposed conversion kernel");
  const int tiles = (p.tokenCount + kWgmmaRows - 1) / kWgmmaRows;
  const auto launch = [&](auto kernel, int heads) {
    const size_t shared =
        (kWgmmaStages * 2 * kWgmmaKeys * D + heads * kWgmmaRows * D) * 2 +
        2 * kWgmmaStages * sizeof(unsigned long long) + 1024;
    checkCuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)),
              "cudaFuncSetAttribute(prefill-attention warpgroup MMAs)");
    kernel<<<dim3(tiles, p.queryHeadCount / heads), kWgmmaThreads * heads, shared, stream>>>(
        p, w.query, keyMap, valueMap, w.rowLse);
  };
  // four or two query heads of a kv head per block where the GQA group allows it: they share every K and V
  // tile (two: 1.03-1.07x over one on an H100 at 4K-16K tokens; four: 1.01-1.03x over two, one block of 16
  // warps per SM instead of two of 8; bench/cuda-prefill-attention/NOTES.md)
  if ((p.queryHeadCount / p.kvHeadCount) % 4 == 0) launch(prefillAttentionWgmmaKernel<T, D, 4>, 4);
  else if ((p.queryHeadCount / p.kvHeadCount) % 2 == 0) launch(prefillAttentionWgmmaKernel<T, D, 2>, 2);
  else launch(prefillAttentionWgmmaKernel<T, D, 1>, 1);
  checkLaunch("prefill-attention warpgroup-MMA kernel");
  if (!wgmmaColumns) {
    launchMmaScoreKernels<D, HalfOperands<D, T>>(p, w.query, w.key, w.rowLse, stream);
    return true;
  }
  launchPrefillScoreKernels<D>(p, w.rowLse, stream, [&](float* sums, int rowStart, const char* what) {
    const size_t shared = (1 + kWgmmaStages) * kWgmmaRows * D * 2 + (2 * kWgmmaStages + 1) * sizeof(unsigned long long) + 1024;
    checkCuda(cudaFuncSetAttribute(prefillColumnSumsWgmmaKernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   static_cast<int>(shared)),
              "cudaFuncSetAttribute(prefill-attention warpgroup-MMA column sums)");
    prefillColumnSumsWgmmaKernel<T, D><<<dim3(tiles, p.queryHeadCount), kWgmmaThreads, shared, stream>>>(
        p, queryMap, keyMap, w.rowLse, sums, rowStart);
    checkLaunch(what);
  });
  return true;
}

template <int D>
void launchPrefillAttentionTensorCores(const PrefillAttentionParams& p, void* workspace, bool warpgroupMma,
                                       cudaStream_t stream) {
  if (warpgroupMma && p.productRounding == 1 && launchPrefillAttentionWgmma<D, __nv_bfloat16>(p, workspace, stream))
    return;
  if (warpgroupMma && p.productRounding == 2 && launchPrefillAttentionWgmma<D, __half>(p, workspace, stream)) return;
  if (p.productRounding == 1) launchPrefillAttentionHalf<D, __nv_bfloat16>(p, workspace, stream);
  else if (p.productRounding == 2) launchPrefillAttentionHalf<D, __half>(p, workspace, stream);
  else if (p.kvRounding != 0)
    launchMmaAttention<D, Tf32Operands<D, true>>(p, p.query, p.key, p.value, static_cast<float*>(workspace), stream);
  else launchMmaAttention<D, Tf32Operands<D, false>>(p, p.query, p.key, p.value, static_cast<float*>(workspace), stream);
}

bool aligned16(const void* pointer) { return (reinterpret_cast<uintptr_t>(pointer) & 15) == 0; }
}  // namespace

bool prefillAttentionUsesTensorCores(const PrefillAttentionParams& params, int computeMajor) {
  return computeMajor >= 8 && (params.headDim == 64 || params.headDim == 128) && aligned16(params.query) &&
         aligned16(params.key) && aligned16(params.value) && aligned16(params.output);
}

size_t prefillAttentionWorkspaceBytes(const PrefillAttentionParams& params) {
  if (params.productRounding == 0)
    return sizeof(float) * static_cast<size_t>(params.queryHeadCount) * static_cast<size_t>(lseRowCount(params));
  // Q, K and V in the 16-bit type, then V transposed for the warpgroup-MMA kernel
  return lseWorkspaceBytes(params) + 2 * static_cast<size_t>(queryElements(params) + 2 * kvElements(params)) +
         2 * static_cast<size_t>(params.kvHeadCount) * params.headDim * paddedTokens(params);
}

void prefillAttention(const PrefillAttentionParams& params, void* workspace, bool tensorCores, bool warpgroupMma,
                      cudaStream_t stream) {
  if (params.tokenCount <= 0 || params.queryHeadCount <= 0) return;
  PrefillAttentionParams p = params;
  if (p.kvRounding == 0) p.kvRounding = p.productRounding;  // products round K and V too
  if (tensorCores) {
    if (p.headDim == 128) launchPrefillAttentionTensorCores<128>(p, workspace, warpgroupMma, stream);
    else launchPrefillAttentionTensorCores<64>(p, workspace, warpgroupMma, stream);
    return;
  }
  // the element kernel adds each probability to its key's column
  for (float* sums : {p.accumulatedScores, p.windowScoreSums})
    if (sums != nullptr)
      checkCuda(cudaMemsetAsync(sums, 0, sizeof(float) * static_cast<size_t>(p.queryHeadCount) * p.tokenCount,
                                stream),
                "cudaMemsetAsync(prefill-attention column sums)");
  const size_t shared = sizeof(float) * (2 * static_cast<size_t>(p.headDim) + kThreads);
  if (shared > 48 * 1024)
    checkCuda(cudaFuncSetAttribute(prefillAttentionKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   static_cast<int>(shared)),
              "cudaFuncSetAttribute(prefill-attention)");
  prefillAttentionKernel<<<dim3(p.tokenCount, p.queryHeadCount), kThreads, shared, stream>>>(p);
  checkLaunch("prefill-attention kernel");
}
}  // namespace fairkv
