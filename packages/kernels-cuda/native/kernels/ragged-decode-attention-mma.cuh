// Tensor-core body of ragged decode attention for f16/bf16/f32 pools with head dim 64 or 128 (H = D/64):
// the GQA group (up to 8 query heads) is the M dimension of mma.sync (m16n8k16 for 16-bit pools, m16n8k8
// on TF32 for f32 pools), so every K and V row is read once per group and the f32 multiply-adds run on
// tensor cores, leaving the kernel bound by memory. Included by ragged-decode-attention.cu (shares its
// schedule, shared memory layout, online softmax and combine kernel).
//
// Precision: K and V of 16-bit pools enter the MMA exactly (they are stored in f16/bf16). The f32 query
// and the f32 probabilities are split into hi + lo halves of the stored type (x = hi + lo, |x - hi - lo|
// about 2^-16 |x|): rows 0-7 of the A operand carry the hi parts of the 8 heads, rows 8-15 the lo parts,
// and the two result rows of a head are summed. Accumulation is f32 throughout. f32 pools: the query and
// the probabilities are split into TF32 hi + lo the same way (rows 0-7 and 8-15), and each K and V value
// too, with one MMA for its lo part and one for its hi part, so every product hi*hi + hi*lo + lo*hi +
// lo*lo is taken; each k-step and each stage's P V go into fresh registers that are added in f32, since
// the tensor cores' own accumulation truncates (FloatPoolUnit).
//
// Fragment layouts follow the PTX ISA (mma.m16n8k16, .bf16/.f16): lane = 4 * group + tig.
// QK^T: A = Q (rows = heads), B = K^T (8 tokens); thread tig holds 16-byte chunks of each K row it
// loads (keyUnitOfLane: 4i + tig after per-lane copies, 2 tig + (i & 1) + 8 (i >> 1) after bulk copies),
// and the same permutation of d is applied to Q.
// P V: A = P (16 tokens), B = V (8 dims per n-tile); thread (group, tig) loads tokens 2 tig, 2 tig + 1,
// 2 tig + 8, 2 tig + 9 at chunk group + 8h and pairs them with byte permutes (no shared memory).
// Included inside the anonymous namespace of ragged-decode-attention.cu, after DecodeArgs; the mma,
// cp.async, transaction-barrier and bulk-copy helpers come from tensor-core.cuh.
#pragma once

/**
 * Where the stages come from. Element copies: 16-byte `cp.async` per lane (any block size), rows
 * swizzled by keyUnit / valueUnit. Bulk copies (compute capability 9.0+, block sizes a multiple of 16):
 * one lane asks the TMA unit for 64-column boxes of the stage's 16 K and 16 V rows (a 2D tensor map
 * over the pool's rows, 128-byte swizzle: 16-byte chunk c of row r lands at c ^ (r & 7) within its
 * 128-byte line) and the warp waits on a transaction barrier.
 */
enum class StageCopy { Elements, Bulk };

/**
 * Geometry of the warp-level pipeline: each of the 4 warps of a block streams its own 16-token
 * stages through kStages shared-memory buffers, kStages - 1 in flight while it computes on one, and
 * keeps its own online softmax. Element copies: 3 buffers; bulk copies: 2 (one in flight was 0.5-1%
 * faster there than two on an H100, same run; bench/cuda-decode-attention/NOTES.md).
 */
template <int H, StageCopy Copy = StageCopy::Elements, int ElementBytes = 2>
struct MmaStage {
#ifdef FAIRKV_MMA_WARPS  // benchmark experiments only
  static constexpr int kWarps = FAIRKV_MMA_WARPS;
#else
  static constexpr int kWarps = 4;
#endif
#ifdef FAIRKV_MMA_STAGES  // benchmark experiments only
  static constexpr int kStages = FAIRKV_MMA_STAGES;
#else
  static constexpr int kStages = Copy == StageCopy::Bulk ? 2 : 3;
#endif
  // f32 pools: 8-token stages (one n-tile of m16n8k8), so a stage holds the same bytes as 16 tokens of
  // a 16-bit pool and the pipeline's buffers, bytes in flight and blocks per SM are the same.
  static constexpr int kTokens = ElementBytes == 4 ? 8 : 16;
  static constexpr int kRowUnits = 4 * H * ElementBytes;                  // 16-byte units per K or V row
  static constexpr int kBoxes = kRowUnits / 8;                            // 128-byte bulk-copy boxes per row
  static constexpr int kStageUnits = 2 * kTokens * kRowUnits;             // K then V of one stage
  static constexpr int kWarpUnits = kStages * kStageUnits;
};
constexpr int kMmaThreads = 32 * MmaStage<1>::kWarps;
/** Persistent blocks per SM (what the stage buffers and registers allow). */
#ifdef FAIRKV_MMA_BLOCKS_PER_SM  // benchmark experiments only
constexpr int kMmaBlocksPerMultiprocessor = FAIRKV_MMA_BLOCKS_PER_SM;
#else
constexpr int kMmaBlocksPerMultiprocessor = 2;
#endif
static_assert(kMmaBlocksPerMultiprocessor * MmaStage<1>::kWarps <= DecodeTraceLayout::kWarpsPerMultiprocessor,
              "the timeline has room for this many warps per SM");

/** Physical 16-byte unit of K row `row`, logical unit `unit`. */
__device__ __forceinline__ int keyUnit(int row, int unit) { return unit ^ ((row & 1) << 2); }
/** Physical 16-byte unit of V row `row`, logical unit `unit`. */
__device__ __forceinline__ int valueUnit(int row, int unit) { return unit ^ (((row >> 1) & 3) << 1); }

/**
 * Index (16-byte units) of K or V row `row`, logical unit `unit`, within a stage's K or V half. Bulk
 * copies, and both copy paths of f32 pools: the bulk copies' layout (128-byte boxes of the stage's rows,
 * one after another; chunk c of row r at c ^ (r & 7) within its line).
 */
template <StageCopy Copy, int H, int ElementBytes = 2>
__device__ __forceinline__ int stageUnit(int row, int unit, bool key) {
  if constexpr (Copy == StageCopy::Bulk || ElementBytes == 4) {
    return (unit >> 3) * (MmaStage<H, Copy, ElementBytes>::kTokens * 8) + row * 8 + ((unit & 7) ^ (row & 7));
  } else {
    return row * MmaStage<H>::kRowUnits + (key ? keyUnit(row, unit) : valueUnit(row, unit));
  }
}
/**
 * Logical 16-byte unit `i` of a K row that lane `tig` loads (the same permutation of d is applied to
 * the query). Element copies: 4 i + tig (the copies' row layout). Bulk copies: 2 tig + (i & 1) + 8 (i >> 1),
 * so rows r and r ^ 1, read by the same quarter-warp, use disjoint chunks of the 128-byte swizzle.
 */
template <StageCopy Copy>
__device__ __forceinline__ int keyUnitOfLane(int tig, int i) {
  return Copy == StageCopy::Bulk ? 2 * tig + (i & 1) + 8 * (i >> 1) : 4 * i + tig;
}

/**
 * One stage of the online softmax over a lane's scores (log2 domain, -inf where masked): turns them
 * into probabilities against the new running max (the 4 lanes of a head agree on it), folds them into
 * this lane's share of the running sum, and returns the factor that rescales the accumulators.
 */
template <int N>
__device__ __forceinline__ float softmaxStage(float (&score)[N], float& runningMax, float& runningSum) {
  float stageMax = score[0];
#pragma unroll
  for (int j = 1; j < N; ++j) stageMax = fmaxf(stageMax, score[j]);
  stageMax = fmaxf(stageMax, __shfl_xor_sync(0xffffffffu, stageMax, 1));
  stageMax = fmaxf(stageMax, __shfl_xor_sync(0xffffffffu, stageMax, 2));
  const float newMax = fmaxf(runningMax, stageMax);
  const float rescale = runningMax == -INFINITY ? 0.f : exp2f(runningMax - newMax);
  float sum = runningSum * rescale;
#pragma unroll
  for (int j = 0; j < N; ++j) {
    score[j] = score[j] == -INFINITY ? 0.f : exp2f(score[j] - newMax);
    sum += score[j];
  }
  runningSum = sum;
  runningMax = newMax;
  return rescale;
}

/**
 * Calls store(d, value) for every unnormalised output dimension a lane (group, tig) holds in the C
 * fragments of its P V products, `tile(o, i)` for o < Outer, i < Inner: columns 0 and 1 of a fragment
 * (each summed with columns 2 and 3, the products of the probabilities' lo half) are dims
 * Inner (2 tig + 8 o) + i and Inner (2 tig + 1 + 8 o) + i.
 */
template <int Outer, int Inner, typename Tile, typename Store>
__device__ __forceinline__ void storeUnitOutputs(int tig, Tile&& tile, Store&& store) {
#pragma unroll
  for (int o = 0; o < Outer; ++o)
#pragma unroll
    for (int i = 0; i < Inner; ++i) {
      const float* c = tile(o, i);
      store(Inner * (2 * tig + 8 * o) + i, c[0] + c[2]);
      store(Inner * (2 * tig + 1 + 8 * o) + i, c[1] + c[3]);
    }
}

/**
 * The math of one work unit for 16-bit pools (mma.sync.m16n8k16): the split query of head `group`, its
 * output accumulators (unnormalised) and its online softmax state.
 */
template <typename T, int H, StageCopy Copy>
struct HalfPoolUnit {
  static constexpr int D = 64 * H;
  static constexpr int kSteps = D / 16;   // k-steps of QK^T
  static constexpr int kChunks = D / 32;  // 16-byte units per thread per K row
  static constexpr int S = MmaStage<H, Copy>::kTokens;
  unsigned queryHi[kSteps][2], queryLo[kSteps][2];
  float acc[H][8][4];
  float runningMax;  // of head `group`, identical across its 4 lanes
  float runningSum;  // this lane's share

  /** Loads the scaled, split query of head `group` at `query` (zeros where `active` is false). */
  __device__ __forceinline__ void start(const float* query, bool active, float scaleLog2, int tig) {
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int word = 2 * s + half;
        const int d = keyUnitOfLane<Copy>(tig, word / 4) * 8 + 2 * (word % 4);
        float2 q = make_float2(0.f, 0.f);
        if (active) q = *reinterpret_cast<const float2*>(query + d);
        queryHi[s][half] = MmaOps<T>::split(q.x * scaleLog2, q.y * scaleLog2, queryLo[s][half]);
      }
    }
#pragma unroll
    for (int h = 0; h < H; ++h)
#pragma unroll
      for (int m = 0; m < 8; ++m)
#pragma unroll
        for (int r = 0; r < 4; ++r) acc[h][m][r] = 0.f;
    runningMax = -INFINITY;
    runningSum = 0.f;
  }

  /** One 16-token stage of the unit's K and V rows (the first `valid` rows are the pair's). */
  __device__ __forceinline__ void stage(const uint4* keys, const uint4* values, int valid, int group, int tig) {
    float score[4];  // tokens 2 tig, 2 tig + 1, 2 tig + 8, 2 tig + 9
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int row = 8 * u + group;
      uint4 key[kChunks];
#pragma unroll
      for (int i = 0; i < kChunks; ++i) key[i] = keys[stageUnit<Copy, H>(row, keyUnitOfLane<Copy>(tig, i), true)];
      float c[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int s = 0; s < kSteps; ++s) {
        const unsigned* words = reinterpret_cast<const unsigned*>(&key[(2 * s) / 4]);
        const unsigned a[4] = {queryHi[s][0], queryLo[s][0], queryHi[s][1], queryLo[s][1]};
        MmaOps<T>::mma(c, a, words[(2 * s) % 4], words[(2 * s) % 4 + 1]);
      }
      score[2 * u] = 8 * u + 2 * tig < valid ? c[0] + c[2] : -INFINITY;
      score[2 * u + 1] = 8 * u + 2 * tig + 1 < valid ? c[1] + c[3] : -INFINITY;
    }
    const float rescale = softmaxStage(score, runningMax, runningSum);
#pragma unroll
    for (int h = 0; h < H; ++h)
#pragma unroll
      for (int m = 0; m < 8; ++m)
#pragma unroll
        for (int r = 0; r < 4; ++r) acc[h][m][r] *= rescale;

    unsigned a[4];
    a[0] = MmaOps<T>::split(score[0], score[1], a[1]);
    a[2] = MmaOps<T>::split(score[2], score[3], a[3]);
    const int rows[4] = {2 * tig, 2 * tig + 1, 2 * tig + 8, 2 * tig + 9};
#pragma unroll
    for (int h = 0; h < H; ++h) {
      uint4 value[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) value[j] = values[stageUnit<Copy, H>(rows[j], group + 8 * h, false)];
      if (Copy == StageCopy::Bulk && valid < S) {
        // Bulk copies load whole stages: rows past the pair's end hold other data, perhaps NaN, which a
        // zero probability would not cancel. (Element copies zero-fill them.)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (rows[j] >= valid) value[j] = make_uint4(0u, 0u, 0u, 0u);
      }
      const unsigned* w0 = reinterpret_cast<const unsigned*>(&value[0]);
      const unsigned* w1 = reinterpret_cast<const unsigned*>(&value[1]);
      const unsigned* w2 = reinterpret_cast<const unsigned*>(&value[2]);
      const unsigned* w3 = reinterpret_cast<const unsigned*>(&value[3]);
#pragma unroll
      for (int m = 0; m < 8; ++m) {
        const unsigned selector = (m & 1) ? 0x7632u : 0x5410u;
        MmaOps<T>::mma(acc[h][m], a, __byte_perm(w0[m / 2], w1[m / 2], selector),
                       __byte_perm(w2[m / 2], w3[m / 2], selector));
      }
    }
  }

  /** Calls store(d, value) for every output dimension d of head `group` this lane holds (unnormalised). */
  template <typename Store>
  __device__ __forceinline__ void forEachOutput(int tig, Store&& store) const {
    storeUnitOutputs<H, 8>(tig, [&](int h, int m) { return acc[h][m]; }, store);
  }
};

/**
 * The math of one work unit for f32 pools (mma.sync.m16n8k8 on TF32, 8-token stages).
 * QK^T: A = the query (rows 0-7 the TF32 hi parts of the 8 heads, rows 8-15 the lo parts), B = K^T of
 * the stage's 8 tokens. Lane (group, tig) loads 16-byte unit u = keyUnitOfLane<Bulk>(tig, i) of K row
 * `group` (the bulk layout's conflict-free pattern) and uses its 4 floats as b0, b1 of k-steps 2i and
 * 2i + 1, so k-step 2i + s reads dims 4u + 2s (b0, A column tig) and 4u + 2s + 1 (b1, column tig + 4);
 * the query is loaded in the same order.
 * P V: the k index tig is token 2 tig and tig + 4 is token 2 tig + 1, which are exactly the tokens whose
 * scores the lane holds after QK^T, so the probabilities become the A fragment in registers. B: lane
 * (group, tig) loads unit group + 8j of V rows 2 tig and 2 tig + 1; float e of it is n-tile 4j + e, so
 * n-tile 4j + e, column n is dim 4 (n + 8j) + e.
 */
template <int H, StageCopy Copy>
struct FloatPoolUnit {
  static constexpr int D = 64 * H;
  static constexpr int kSteps = D / 8;         // k-steps of QK^T
  static constexpr int kKeyChunks = D / 16;    // 16-byte units of a K row per lane (2 k-steps each)
  static constexpr int kValueChunks = D / 32;  // 16-byte units of each of 2 V rows per lane (4 n-tiles each)
  static constexpr int kTiles = D / 8;         // n-tiles of P V
  static constexpr int S = MmaStage<H, Copy, 4>::kTokens;
  unsigned query[kSteps][4];  // A fragments: hi and lo of column tig, hi and lo of column tig + 4
  float acc[kTiles][4];
  float runningMax;  // of head `group`, identical across its 4 lanes
  float runningSum;  // this lane's share

  __device__ __forceinline__ void start(const float* q, bool active, float scaleLog2, int tig) {
#pragma unroll
    for (int i = 0; i < kKeyChunks; ++i) {
      const int d = 4 * keyUnitOfLane<StageCopy::Bulk>(tig, i);
      float2 low = make_float2(0.f, 0.f), high = make_float2(0.f, 0.f);
      if (active) {
        low = *reinterpret_cast<const float2*>(q + d);
        high = *reinterpret_cast<const float2*>(q + d + 2);
      }
      splitTf32(low.x * scaleLog2, query[2 * i][0], query[2 * i][1]);
      splitTf32(low.y * scaleLog2, query[2 * i][2], query[2 * i][3]);
      splitTf32(high.x * scaleLog2, query[2 * i + 1][0], query[2 * i + 1][1]);
      splitTf32(high.y * scaleLog2, query[2 * i + 1][2], query[2 * i + 1][3]);
    }
#pragma unroll
    for (int m = 0; m < kTiles; ++m)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[m][r] = 0.f;
    runningMax = -INFINITY;
    runningSum = 0.f;
  }

  /** One 8-token stage of the unit's K and V rows (the first `valid` rows are the pair's). */
  __device__ __forceinline__ void stage(const uint4* keys, const uint4* values, int valid, int group, int tig) {
    uint4 key[kKeyChunks];
#pragma unroll
    for (int i = 0; i < kKeyChunks; ++i)
      key[i] = keys[stageUnit<Copy, H, 4>(group, keyUnitOfLane<StageCopy::Bulk>(tig, i), true)];
    // Each k-step into fresh registers, added in f32: the tensor cores' f32 accumulation truncates, and
    // a chain of 2 kSteps MMAs into one accumulator biased the scores toward zero.
    float c[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int i = 0; i < kKeyChunks; ++i) {
      const unsigned* words = reinterpret_cast<const unsigned*>(&key[i]);
#pragma unroll
      for (int s = 0; s < 2; ++s) {
        unsigned hi[2], lo[2];
        splitTf32(__uint_as_float(words[2 * s]), hi[0], lo[0]);
        splitTf32(__uint_as_float(words[2 * s + 1]), hi[1], lo[1]);
        float step[4] = {0.f, 0.f, 0.f, 0.f};
        mmaTf32(step, query[2 * i + s], lo[0], lo[1]);
        mmaTf32(step, query[2 * i + s], hi[0], hi[1]);
#pragma unroll
        for (int r = 0; r < 4; ++r) c[r] += step[r];
      }
    }
    float score[2];  // tokens 2 tig, 2 tig + 1
    score[0] = 2 * tig < valid ? c[0] + c[2] : -INFINITY;
    score[1] = 2 * tig + 1 < valid ? c[1] + c[3] : -INFINITY;
    const float rescale = softmaxStage(score, runningMax, runningSum);

    unsigned a[4];
    splitTf32(score[0], a[0], a[1]);
    splitTf32(score[1], a[2], a[3]);
#pragma unroll
    for (int j = 0; j < kValueChunks; ++j) {
      uint4 even = values[stageUnit<Copy, H, 4>(2 * tig, group + 8 * j, false)];
      uint4 odd = values[stageUnit<Copy, H, 4>(2 * tig + 1, group + 8 * j, false)];
      if (Copy == StageCopy::Bulk && valid < S) {
        // rows past the pair's end hold other data, perhaps NaN (see HalfPoolUnit)
        if (2 * tig >= valid) even = make_uint4(0u, 0u, 0u, 0u);
        if (2 * tig + 1 >= valid) odd = make_uint4(0u, 0u, 0u, 0u);
      }
      const unsigned* e0 = reinterpret_cast<const unsigned*>(&even);
      const unsigned* e1 = reinterpret_cast<const unsigned*>(&odd);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        unsigned hi[2], lo[2];
        splitTf32(__uint_as_float(e0[e]), hi[0], lo[0]);
        splitTf32(__uint_as_float(e1[e]), hi[1], lo[1]);
        // the stage's product into fresh registers, then rescaled and added in f32 (as the scores)
        float part[4] = {0.f, 0.f, 0.f, 0.f};
        mmaTf32(part, a, lo[0], lo[1]);
        mmaTf32(part, a, hi[0], hi[1]);
#pragma unroll
        for (int r = 0; r < 4; ++r) acc[4 * j + e][r] = fmaf(acc[4 * j + e][r], rescale, part[r]);
      }
    }
  }

  /** As HalfPoolUnit::forEachOutput (n-tile 4j + e holds dims 4 (2 tig + 8j) + e and 4 (2 tig + 1 + 8j) + e). */
  template <typename Store>
  __device__ __forceinline__ void forEachOutput(int tig, Store&& store) const {
    storeUnitOutputs<kValueChunks, 4>(tig, [&](int j, int e) { return acc[4 * j + e]; }, store);
  }
};

/**
 * Shared memory of the per-block schedule's tables for `pairCount` pairs: each pair's packed prefix
 * (full chunks before it in the high 32 bits, tail chunks in the low), one more for the totals, then
 * each pair's length, then the pair of each tail in execution order.
 */
constexpr size_t localScheduleBytes(int pairCount) {
  return ((static_cast<size_t>(pairCount) + 1) * sizeof(long long) + 2 * static_cast<size_t>(pairCount) * sizeof(int) + 15) /
         16 * 16;
}
/** Dynamic shared memory a block of the tensor-core kernel may take so that two fit on an SM (228 KB). */
constexpr size_t kMmaSharedBudget = 110 * 1024;

/** Shared memory of the tensor-core kernel (the warps' stage buffers; bulk copies align them to 1 KB). */
template <int H>
constexpr size_t mmaSharedBytes(StageCopy copy = StageCopy::Elements) {
  using Bulk = MmaStage<H, StageCopy::Bulk>;
  using Elements = MmaStage<H, StageCopy::Elements>;
  return copy == StageCopy::Bulk ? Bulk::kWarps * Bulk::kWarpUnits * 16 + 1024 : Elements::kWarps * Elements::kWarpUnits * 16;
}

/** One work unit of a persistent warp: an item (chunk of a pair) for one group of up to 8 query heads. */
struct MmaWork {
  int work;        // index into the (item, subgroup) space; >= the end means "no more work"
  int pair;
  int slotItem;    // partial slot (contiguous per pair)
  int chunkCount;  // items of this pair
  int tokenBegin;
  int tokenEnd;
  int tableOffset;
  int stages;      // 16-token stages; at least 1 (an empty stage for zero-length pairs and the end)
  int subgroup;
};

template <typename T, int H, StageCopy Copy>
__global__ void __launch_bounds__(kMmaThreads, kMmaBlocksPerMultiprocessor)
    decodeMmaKernel(DecodeArgs args, const __grid_constant__ CUtensorMap poolMap) {
  constexpr bool kBulk = Copy == StageCopy::Bulk;
  constexpr int D = 64 * H;
  constexpr int kElementBytes = static_cast<int>(sizeof(T));
  using Stage = MmaStage<H, Copy, kElementBytes>;
  using Unit = std::conditional_t<kElementBytes == 4, FloatPoolUnit<H, Copy>, HalfPoolUnit<T, H, Copy>>;
  constexpr int S = Stage::kTokens;
  waitForPrerequisiteGrid();  // the kernel before (the schedule kernel, or what wrote the pairs and pool)
  allowDependentLaunch();     // the combine blocks may be placed while the work queue drains
  extern __shared__ __align__(16) unsigned char sharedBytes[];
  __shared__ ScheduleStorage<kMmaThreads> scheduleStorage;
  // The per-block schedule's tables (localScheduleBytes), after the stage buffers.
  long long* const sPrefix = reinterpret_cast<long long*>(sharedBytes + mmaSharedBytes<H>(Copy));
  int* const sLength = reinterpret_cast<int*>(sPrefix + args.plan.pairCount + 1);
  int* const sTailPair = sLength + args.plan.pairCount;  // the pair of each tail, in execution order
  int itemCount, chunk;
  long long fullTotal = 0;  // per-block schedule: full chunks of the call (they come first in the queue)
  int* workCounter;
  if (args.localSchedule) {
    // Every block plans the chunks itself (the same arithmetic on the same lengths gives every block
    // the same schedule): no warp waits for another block, and a work unit is found by a binary search
    // of the prefix table in shared memory. Block 0 also writes each pair's first slot for the combine.
    const bool first = blockIdx.x == 0;
    if (first && args.trace != nullptr && threadIdx.x == 0) args.trace[0] = globalNanoseconds();
    const ChunkTotals totals = planChunks<kMmaThreads>(
        args.plan, scheduleStorage, sLength, args.plan.pairCount,
        [&](int p, int, long long fullOffset, long long partialOffset, long long tailRank, const ChunkTotals&) {
          sPrefix[p] = (fullOffset << 32) | partialOffset;
          if (tailRank >= 0) sTailPair[tailRank] = p;
          if (first) args.plan.itemStart[p] = static_cast<int>(fullOffset + partialOffset);
        });
    itemCount = static_cast<int>(totals.full + totals.partial);
    if (threadIdx.x == 0) {
      sPrefix[args.plan.pairCount] = (totals.full << 32) | totals.partial;
      if (first) {
        args.plan.itemStart[args.plan.pairCount] = itemCount;
        if (args.trace != nullptr) args.trace[1] = globalNanoseconds();
      }
    }
    __syncthreads();
    chunk = totals.chunk;
    fullTotal = totals.full;
    workCounter = args.workCounter;
  } else {
    if (args.scheduleReady != nullptr) {
      // Block 0 builds the schedule; every warp (block 0's too) waits until it is published. Block 0 is
      // placed first, so the waiting blocks never hold it out. Its stage buffers are free until then:
      // they cache the pair lengths.
      if (blockIdx.x == 0) {
        if (args.trace != nullptr && threadIdx.x == 0) args.trace[0] = globalNanoseconds();
        buildSchedule<kMmaThreads>(args.plan, scheduleStorage, reinterpret_cast<int*>(sharedBytes),
                                   static_cast<int>(mmaSharedBytes<H>(Copy) / sizeof(int)));
        __threadfence();
        __syncthreads();
        if (threadIdx.x == 0) {
          storeRelease(args.scheduleReady, args.scheduleEpoch);
          if (args.trace != nullptr) args.trace[1] = globalNanoseconds();
        }
      }
      while (loadAcquire(args.scheduleReady) != args.scheduleEpoch) __nanosleep(64);
    }
    itemCount = args.plan.schedule->itemCount;
    chunk = args.plan.schedule->chunkTokens;
    workCounter = &args.plan.schedule->workCounter;
  }
  const int workCount = itemCount * args.subgroups;
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int group = lane >> 2;
  const int tig = lane & 3;
  // Benchmark timeline: start, end, SM and stages streamed of this warp (RaggedDecodeAttentionParams::trace).
  unsigned long long* trace =
      args.trace == nullptr ? nullptr : args.trace + DecodeTraceLayout::warp(blockIdx.x * Stage::kWarps + warp);
  if (trace != nullptr && lane == 0) trace[0] = globalNanoseconds();
  long long streamedStages = 0;

  unsigned char* stageBytes = sharedBytes;
  if constexpr (kBulk) stageBytes += (1024 - (sharedAddress(sharedBytes) & 1023)) & 1023;  // the swizzle's alignment
  uint4* sWarp = reinterpret_cast<uint4*>(stageBytes) + warp * Stage::kWarpUnits;
  // Bulk copies: one transaction barrier per stage buffer of each warp (a phase per use).
  __shared__ unsigned long long sBarrier[Stage::kWarps][Stage::kStages];
  if constexpr (kBulk) {
    if (lane == 0)
      for (int b = 0; b < Stage::kStages; ++b) barrierInit(&sBarrier[warp][b], 1);
    __syncwarp();
  }
  // Work indices taken by the issue cursor, read by the compute cursor (at most kStages ahead).
  constexpr int kQueue = Stage::kStages + 1;
  __shared__ int sQueue[Stage::kWarps][kQueue];

  const T* pool = static_cast<const T*>(args.pool);
  const long long valueOffset = static_cast<long long>(args.blockSize) * D;
  const bool contiguous = args.blockSize % S == 0;
  const auto describe = [&](int work) {
    MmaWork w{};
    w.work = work;
    w.stages = 1;
    if (work >= workCount) return w;
    const int item = work / args.subgroups;
    w.subgroup = work % args.subgroups;
    int chunkIndex, kvLength;
    if (args.localSchedule) {
      // Full chunks run first, in pair order: a full item's pair is the last one whose prefix of full
      // chunks is at most the item's rank (pairs with none share the next one's prefix, so the search
      // never stops on them). Then every pair's last, shorter chunk (a short pair's only one), by size
      // class, largest first: the table of tails in that order names the pair.
      const bool full = item < fullTotal;
      const long long rank = full ? item : item - fullTotal;
      if (full) {
        int low = 0, high = args.plan.pairCount - 1;
        while (low < high) {
          const int middle = (low + high + 1) >> 1;
          if ((sPrefix[middle] >> 32) <= rank) low = middle;
          else high = middle - 1;
        }
        w.pair = low;
      } else {
        w.pair = sTailPair[rank];  // tails run by size class, largest first (planChunks)
      }
      // a pair's first slot: every full and tail chunk of the pairs before it
      const auto slotsBefore = [&](int p) { return static_cast<int>((sPrefix[p] >> 32) + (sPrefix[p] & 0xffffffffLL)); };
      kvLength = sLength[w.pair];
      chunkIndex = full ? static_cast<int>(rank - (sPrefix[w.pair] >> 32)) : kvLength / chunk;
      const int first = slotsBefore(w.pair);
      w.slotItem = first + chunkIndex;
      w.chunkCount = slotsBefore(w.pair + 1) - first;
    } else {
      const int2 owner = args.plan.items[item];
      w.pair = owner.x;
      chunkIndex = owner.y;
      const int first = args.plan.itemStart[w.pair];
      w.slotItem = first + chunkIndex;
      w.chunkCount = args.plan.itemStart[w.pair + 1] - first;
      kvLength = max(args.plan.pairs[w.pair * 4 + 2], 0);
    }
    w.tableOffset = args.plan.pairs[w.pair * 4 + 3];
    w.tokenBegin = chunkIndex * chunk;
    w.tokenEnd = min(kvLength, w.tokenBegin + chunk);
    w.stages = max(1, (w.tokenEnd - w.tokenBegin + S - 1) / S);
    return w;
  };
  // Every warp's first unit is its own index (no atomic on the start's critical path; the index runs
  // over blocks first, below); the work counter then hands out the units past the first wave.
  const int firstWave = static_cast<int>(gridDim.x) * Stage::kWarps;
  const auto take = [&]() {
    int work = 0;
    if (lane == 0) work = firstWave + atomicAdd(workCounter, 1);
    return __shfl_sync(0xffffffffu, work, 0);
  };
  const auto tokenRow = [&](const MmaWork& w, int t) -> long long {
    const int block = args.blockTable[w.tableOffset + t / args.blockSize];
    return (static_cast<long long>(block) * 2 * args.blockSize + t % args.blockSize) * D;
  };

  // Issue cursor: two stages ahead of the compute cursor, crossing into the next work unit early.
  constexpr int kRowsPerStep = 32 / Stage::kRowUnits;
  constexpr int kCopySteps = S / kRowsPerStep;
  const int copyUnit = lane % Stage::kRowUnits;
  const int copyRow = lane / Stage::kRowUnits;
  int issued = 0;
  int queued = 0;
  // First units go to warp 0 of every block, then warp 1, ...: a call with fewer units than warps
  // spreads over every SM instead of filling the first blocks' warps.
  MmaWork issueWork = describe(warp * static_cast<int>(gridDim.x) + static_cast<int>(blockIdx.x));
  if (lane == 0) sQueue[warp][0] = issueWork.work;
  queued = 1;
  int issueStage = 0;
  // First row of the stage about to be issued, looked up one stage ahead (-1: not looked up yet), so
  // the block-table latency stays off the copy path except at the first stage of a work unit.
  long long pendingRow = -1;
  const auto issueNext = [&]() {
    uint4* keys = sWarp + (issued % Stage::kStages) * Stage::kStageUnits;
    uint4* values = keys + S * Stage::kRowUnits;
    const int stageBegin = issueWork.tokenBegin + issueStage * S;
    const int valid = issueWork.work >= workCount ? 0 : max(0, min(S, issueWork.tokenEnd - stageBegin));
    const long long firstRow =
        valid > 0 && contiguous ? (pendingRow >= 0 ? pendingRow : tokenRow(issueWork, stageBegin)) : 0;
    pendingRow = -1;
    if constexpr (kBulk) {
      unsigned long long* barrier = &sBarrier[warp][issued % Stage::kStages];
      if (lane == 0) {
        if (valid > 0) {
          const int row = static_cast<int>(firstRow / D);  // the stage's first K row; its V rows follow the block's K
          barrierArriveExpecting(barrier, 2 * S * D * sizeof(T));
#pragma unroll
          for (int b = 0; b < Stage::kBoxes; ++b) {
            tileLoad2d(keys + b * S * 8, &poolMap, b * (128 / kElementBytes), row, barrier);
            tileLoad2d(values + b * S * 8, &poolMap, b * (128 / kElementBytes), row + args.blockSize, barrier);
          }
        } else {
          barrierArrive(barrier);  // nothing to copy: complete the phase
        }
      }
    } else {
#pragma unroll
      for (int c = 0; c < kCopySteps; ++c) {
        const int token = c * kRowsPerStep + copyRow;
        const bool ok = token < valid;
        const long long row = !ok ? 0
                                  : (contiguous ? firstRow + static_cast<long long>(token) * D
                                                : tokenRow(issueWork, stageBegin + token));
        const T* key = pool + (ok ? row + copyUnit * (16 / kElementBytes) : 0);
        copyAsync16ThroughL1(keys + stageUnit<Copy, H, kElementBytes>(token, copyUnit, true), key, ok);
        copyAsync16ThroughL1(values + stageUnit<Copy, H, kElementBytes>(token, copyUnit, false),
                             key + (ok ? valueOffset : 0), ok);
      }
      commitAsync();
    }
    ++issued;
    if (contiguous && issueWork.work < workCount && issueStage + 1 < issueWork.stages)
      pendingRow = tokenRow(issueWork, stageBegin + S);  // used by the next call
    if (++issueStage == issueWork.stages && issueWork.work < workCount) {
      issueWork = describe(take());
      if (lane == 0) sQueue[warp][queued % kQueue] = issueWork.work;
      ++queued;
      issueStage = 0;
    } else if (issueStage == issueWork.stages) {
      issueStage = 0;  // past the end: keep issuing empty stages
    }
  };
  for (int i = 0; i < Stage::kStages - 1; ++i) issueNext();

  int computed = 0;
  for (int ordinal = 0;; ++ordinal) {
    __syncwarp();
    const MmaWork work = describe(sQueue[warp][ordinal % kQueue]);
    if (work.work >= workCount) break;
    const int firstHead = work.subgroup * 8;
    const int headCount = min(8, args.groupSize - firstHead);
    const long long queryBase =
        ((static_cast<long long>(args.plan.pairs[work.pair * 4 + 0]) * args.kvHeadCount + args.plan.pairs[work.pair * 4 + 1]) *
             args.groupSize + firstHead) * D;
    Unit unit;
    unit.start(args.query + queryBase + group * D, group < headCount, args.scaleLog2, tig);

    streamedStages += work.stages;
    for (int k = 0; k < work.stages; ++k) {
      issueNext();
      if constexpr (kBulk) {
        barrierWait(&sBarrier[warp][computed % Stage::kStages], (computed / Stage::kStages) & 1);
      } else {
        waitAsync<Stage::kStages - 1>();
      }
      __syncwarp();
      const uint4* keys = sWarp + (computed % Stage::kStages) * Stage::kStageUnits;
      const uint4* values = keys + S * Stage::kRowUnits;
      const int valid = max(0, min(S, work.tokenEnd - work.tokenBegin - k * S));
      unit.stage(keys, values, valid, group, tig);
      ++computed;
      __syncwarp();  // done reading this buffer before a later stage is issued into it
    }

    // The work unit is done: this warp alone holds it, so it writes straight from registers.
    float runningSum = unit.runningSum;
    runningSum += __shfl_xor_sync(0xffffffffu, runningSum, 1);
    runningSum += __shfl_xor_sync(0xffffffffu, runningSum, 2);
    if (group < headCount) {
      if (work.chunkCount == 1) {
        float* out = args.output + queryBase + group * D;
        const float inverse = runningSum > 0.f ? 1.f / runningSum : 0.f;
        unit.forEachOutput(tig, [&](int d, float value) { out[d] = value * inverse; });
      } else {
        const long long slot = static_cast<long long>(work.slotItem) * args.subgroups + work.subgroup;
        float* partial = args.partialAcc + (slot * 8 + group) * D;
        unit.forEachOutput(tig, [&](int d, float value) { partial[d] = value; });
        if (tig == 0) {
          args.partialMaxSum[(slot * 8 + group) * 2 + 0] = unit.runningMax;
          args.partialMaxSum[(slot * 8 + group) * 2 + 1] = runningSum;
        }
      }
    }
  }
  if constexpr (!kBulk) waitAsync<0>();
  if (trace != nullptr && lane == 0) {
    trace[1] = globalNanoseconds();
    trace[2] = multiprocessorId();
    trace[3] = streamedStages;
  }
}
