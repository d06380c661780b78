// Ragged decode attention over the paged KV pool (layout: packages/kernels/src/kv-layout.ts), GQA,
// flash-decoding style (Dao et al., "Flash-Decoding for long-context inference", 2023):
//
// 1. the schedule (planChunks) reads the pair lengths on the device, picks a chunk length so the
//    whole call makes between `targetItems` and `mostItems` work items (chunks near
//    `preferredChunkTokens` where that range allows, unless they would leave a second round of the work
//    queue to at most half the warps: then one item per warp or two), and numbers each pair's items (an exclusive
//    prefix sum of its chunk counts): inside the tensor-core kernel every block plans it in its own
//    shared memory (or, for pair tables too long for that, block 0 writes it to global memory and
//    publishes a flag), or a one-block kernel does before the CUDA-core kernel (buildSchedule);
// 2. the main kernel runs one thread block per (work item, group of up to 8 query heads): the whole
//    GQA group of a kv head lives in one block, so each K and V row is read once per group, with
//    16-byte loads, f32 accumulation and an online softmax over sub-chunks of 256 tokens; pairs that
//    fit in one item write their output directly, longer ones write partial (acc, max, sum);
// 3. a combine kernel merges the partials of pairs split over several items.
// Long pairs therefore spread over many SMs while short pairs cost one small block each.
#include <cub/block/block_reduce.cuh>

#include <algorithm>
#include <cub/block/block_scan.cuh>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "../common.h"
#include "dtype-convert.cuh"
#include "kernels.h"
#include "tensor-core.cuh"

namespace fairkv {
namespace {

constexpr int kThreads = 256;
constexpr int kSubChunk = 256;
constexpr int kScheduleThreads = 1024;
constexpr float kLog2e = 1.4426950408889634f;

/** Nanoseconds of the GPU's global timer (the benchmark's timeline). */
__device__ __forceinline__ unsigned long long globalNanoseconds() {
  unsigned long long time;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(time));
  return time;
}

/** The SM this thread runs on (the benchmark's timeline). */
__device__ __forceinline__ unsigned int multiprocessorId() {
  unsigned int id;
  asm volatile("mov.u32 %0, %smid;" : "=r"(id));
  return id;
}

struct Schedule {
  int chunkTokens;
  int itemCount;
  int workCounter;  // units handed out past the first wave (tensor-core kernel: a warp's first unit is its index)
};

/** What the schedule reads and writes (see buildSchedule). */
struct ScheduleArgs {
  const int* pairs;
  int pairCount, fewestItems, mostItems, preferredChunk, minChunk, smallCallChunk;
  int* itemStart;
  int2* items;
  Schedule* schedule;
};

/**
 * What the schedule's one scan adds up per pair: full chunks (high 32 bits) and tail chunks (low) of
 * `counts`, and the tails of size classes 0-2 packed in `classes` (see tailClass).
 */
struct ChunkCounts {
  long long counts;
  long long classes;
};
__device__ __forceinline__ ChunkCounts operator+(const ChunkCounts& a, const ChunkCounts& b) {
  return {a.counts + b.counts, a.classes + b.classes};
}

/**
 * What the schedule weighs chunk lengths by (see planChunks and wavesEstimate), per candidate (one
 * item per warp, two, preferredChunk): its full chunks, and the count and tokens of its tails of at
 * least half a chunk.
 */
struct WaveStats {
  long long full[3];
  long long bigTails[3];
  long long bigTailTokens[3];
};
__device__ __forceinline__ WaveStats operator+(const WaveStats& a, const WaveStats& b) {
  WaveStats sum;
#pragma unroll
  for (int k = 0; k < 3; ++k) {
    sum.full[k] = a.full[k] + b.full[k];
    sum.bigTails[k] = a.bigTails[k] + b.bigTails[k];
    sum.bigTailTokens[k] = a.bigTailTokens[k] + b.bigTailTokens[k];
  }
  return sum;
}

template <int Threads>
struct ScheduleStorage {
  union {
    typename cub::BlockReduce<long long, Threads>::TempStorage reduce;
    typename cub::BlockReduce<WaveStats, Threads>::TempStorage waves;
    typename cub::BlockScan<ChunkCounts, Threads>::TempStorage scan;
  } temp;
  int chunk;
  int alternative;  // the two-wave chunk still to weigh against `chunk` (0: none)
  int preferred;    // preferredChunk rounded, the third candidate where `alternative` is set
};

/**
 * The end of a call's work queue in tokens, estimated for chunks of `chunk` tokens over `warps` warps
 * taking one item at a time: the full chunks run in ceil(full / warps) rounds; the tails of at least half
 * a chunk (`bigTails`, `bigTailTokens` in all) go first to the warps the last round leaves free, one
 * each, and only where there are more of them than free warps do they lengthen the call. Smaller tails
 * are taken to fit around the rest.
 */
__device__ __forceinline__ long long wavesEstimate(long long chunk, long long full, long long bigTails,
                                                   long long bigTailTokens, long long warps) {
  const long long rounds = (full + warps - 1) / warps;
  const long long free = rounds == 0 ? warps : rounds * warps - full;
  const long long whole = max(rounds, 1LL) * chunk;
  if (bigTails <= free) return whole;
  const long long tail = bigTailTokens / bigTails;
  if (rounds == 0) return max(whole, 2 * tail);
  // the tails left over follow a first tail on the free warps, or, past two each, the full rounds
  return max(whole, bigTails - free <= free ? (rounds - 1) * chunk + 2 * tail : rounds * chunk + tail);
}

/** What planChunks found: the chunk length and the counts of full and tail chunks of the whole call. */
struct ChunkTotals {
  int chunk;
  long long full;     // full chunks (they run first)
  long long partial;  // tail chunks and whole short pairs (they run last)
};

/** Whether a pair of `length` tokens ends in a chunk shorter than `chunk` (a whole pair of 0 tokens counts as one). */
__device__ __forceinline__ int tailChunks(int length, int chunk) { return (length % chunk != 0 || length == 0) ? 1 : 0; }

/**
 * Size classes of tail chunks (a pair's last, shorter chunk; a short pair's only one): tails run class by
 * class, largest first, after every full chunk, so the last work the queue hands out is the smallest
 * (longest-processing-time-first by classes). Where lengths vary from pair to pair, a tail of nearly a
 * chunk handed out last would otherwise hold the call's end.
 */
constexpr int kTailClasses = 4;
/** Bits of each packed class counter in the schedule's scan (classes 0-2; class 3 is the rest). */
constexpr int kTailClassBits = 21;
/** Pairs a call may have: the packed class counters must not carry. */
constexpr int kMaxPairs = (1 << kTailClassBits) - 1;
/** Class of a tail of `length % chunk` tokens: 0 for at least half a chunk, 1 a quarter, 2 an eighth, 3 less. */
__device__ __forceinline__ int tailClass(int length, int chunk) {
  const long long tail = length % chunk;
  return 2 * tail >= chunk ? 0 : 4 * tail >= chunk ? 1 : 8 * tail >= chunk ? 2 : 3;
}

/**
 * The chunking shared by every schedule, computed by one block of `Threads` threads: reads the pair
 * lengths on the device, picks a chunk length so the call makes between `fewestItems` work items (one
 * per persistent warp) and `mostItems` (two): chunks of about `preferredChunk` tokens where that range
 * allows, except where their full chunks would need a second round of the queue that at most half the
 * warps take part in: there one item per warp or two, whichever wavesEstimate says ends first (small
 * calls, where one per warp would be shorter than `smallCallChunk`: half as many, at most
 * `preferredChunk` tokens long), and calls
 * `emit(p, length, fullOffset, partialOffset, tailRank, totals)` for every pair with the exclusive prefix
 * sums of the full and tail chunk counts before it, and the rank of its tail among the call's tails in
 * execution order (by class, then pair; -1 without a tail), each thread for a contiguous range of pairs,
 * in order.
 * Where the pairs fit in `lengthCache` (shared memory, `cacheCapacity` ints), their lengths are read
 * from global memory once, all loads in flight together, instead of once per pass; the cache is valid
 * on return.
 */
template <int Threads, typename Emit>
__device__ ChunkTotals planChunks(const ScheduleArgs& a, ScheduleStorage<Threads>& storage, int* lengthCache,
                                  int cacheCapacity, Emit emit) {
  using Reduce = cub::BlockReduce<long long, Threads>;
  using Scan = cub::BlockScan<ChunkCounts, Threads>;
  const bool cached = a.pairCount <= cacheCapacity;
  long long localTokens = 0;
#pragma unroll 4
  for (int p = threadIdx.x; p < a.pairCount; p += Threads) {
    const int length = max(a.pairs[p * 4 + 2], 0);
    if (cached) lengthCache[p] = length;
    localTokens += length;
  }
  const auto lengthOf = [&](int p) { return cached ? lengthCache[p] : max(a.pairs[p * 4 + 2], 0); };
  const long long totalTokens = Reduce(storage.temp.reduce).Sum(localTokens);
  if (threadIdx.x == 0) {
    const auto rounded = [&](long long chunk) {
      chunk = ((chunk + 63) / 64) * 64;
      return static_cast<int>(min(max(chunk, static_cast<long long>(a.minChunk)), 1LL << 30));
    };
    const long long longest = (totalTokens + a.fewestItems - 1) / a.fewestItems;
    const long long shortest = (totalTokens + a.mostItems - 1) / a.mostItems;
    storage.alternative = 0;
    if (longest < a.smallCallChunk) {
      // small calls: half as many items, twice as long, where the fewest would be shorter than smallCallChunk
      const long long half = max(1, a.fewestItems / 2);
      storage.chunk = rounded(max(shortest, min(static_cast<long long>(a.preferredChunk), (totalTokens + half - 1) / half)));
    } else if (longest <= a.preferredChunk || shortest >= a.preferredChunk) {
      // one item per warp where those chunks are at most preferredChunk tokens, two where even those are longer
      storage.chunk = rounded(max(shortest, min(static_cast<long long>(a.preferredChunk), longest)));
    } else {
      // chunks of preferredChunk make between one and two items per warp: weighed below
      storage.chunk = rounded(longest);
      storage.alternative = rounded(shortest);
      storage.preferred = rounded(a.preferredChunk);
    }
  }
  __syncthreads();  // also publishes the length cache
  if (storage.alternative != 0) {
    const int candidates[3] = {storage.chunk, storage.alternative, storage.preferred};
    WaveStats local{};
    for (int p = threadIdx.x; p < a.pairCount; p += Threads) {
      const int length = lengthOf(p);
#pragma unroll
      for (int k = 0; k < 3; ++k) {
        local.full[k] += length / candidates[k];
        const int tail = length % candidates[k];
        if (2 * tail >= candidates[k]) {
          local.bigTails[k] += 1;
          local.bigTailTokens[k] += tail;
        }
      }
    }
    const WaveStats all = cub::BlockReduce<WaveStats, Threads>(storage.temp.waves).Sum(local);
    if (threadIdx.x == 0) {
      // Chunks of preferredChunk whose full chunks need a second round of the work queue that at most half
      // the warps take part in leave the others idle for most of a chunk (on an H100, 40 requests of the
      // quarter-long mix made 10 items per SM, 13% slower than 8): whole waves instead, one item per warp
      // or two, whichever wavesEstimate says ends first (a tie keeps the fewer, longer items). A fuller
      // second round costs little (its warps stream faster with fewer beside them), and the rule stays.
      const long long beyondOneRound = all.full[2] - a.fewestItems;
      if (beyondOneRound > 0 && 2 * beyondOneRound <= a.fewestItems) {
        const long long estimates[2] = {
            wavesEstimate(candidates[0], all.full[0], all.bigTails[0], all.bigTailTokens[0], a.fewestItems),
            wavesEstimate(candidates[1], all.full[1], all.bigTails[1], all.bigTailTokens[1], a.fewestItems)};
        storage.chunk = estimates[1] < estimates[0] ? candidates[1] : candidates[0];
      } else {
        storage.chunk = candidates[2];
      }
    }
    __syncthreads();
  }
  const int chunk = storage.chunk;

  // Slots (partials) are numbered contiguously per pair; the execution order puts every full chunk
  // first and the shorter tail chunks (and short pairs) last, largest class first, so they fill the
  // final wave and the smallest come last.
  const int perThread = (a.pairCount + Threads - 1) / Threads;
  const int begin = min(a.pairCount, static_cast<int>(threadIdx.x) * perThread);
  const int end = min(a.pairCount, begin + perThread);
  // One scan: full chunks in the high 32 bits of `counts`, tail chunks in the low (an item count is an
  // int, so neither carries into the other), and the tails of classes 0-2 in `classes`, kTailClassBits
  // each (a call has at most kMaxPairs pairs).
  ChunkCounts local{0, 0};
  for (int p = begin; p < end; ++p) {
    const int length = lengthOf(p);
    const int tail = tailChunks(length, chunk);
    local.counts += (static_cast<long long>(length / chunk) << 32) + tail;
    const int c = tailClass(length, chunk);
    if (tail != 0 && c < kTailClasses - 1) local.classes += 1LL << (kTailClassBits * c);
  }
  ChunkCounts before{0, 0}, all{0, 0};
  Scan(storage.temp.scan).ExclusiveSum(local, before, all);
  const long long offsets = before.counts, totals = all.counts;
  const long long classOffsets = before.classes, classTotals = all.classes;
  const ChunkTotals result{chunk, totals >> 32, totals & 0xffffffffLL};
  long long fullOffset = offsets >> 32, partialOffset = offsets & 0xffffffffLL;
  // Each class's next tail rank for this thread's pairs: the classes before it, then this class's tails
  // of the pairs before this thread's (class 3: the tails that are in none of the others).
  constexpr long long kMask = (1LL << kTailClassBits) - 1;
  long long tailRank[kTailClasses];
  long long classBase = 0, offsetOfOthers = 0;
#pragma unroll
  for (int c = 0; c < kTailClasses - 1; ++c) {
    const long long earlier = (classOffsets >> (kTailClassBits * c)) & kMask;
    tailRank[c] = classBase + earlier;
    classBase += (classTotals >> (kTailClassBits * c)) & kMask;
    offsetOfOthers += earlier;
  }
  tailRank[kTailClasses - 1] = classBase + partialOffset - offsetOfOthers;
  for (int p = begin; p < end; ++p) {
    const int length = lengthOf(p);
    const int tail = tailChunks(length, chunk);
    // rank of the pair's tail among the call's tails in execution order (unused where it has none)
    long long rank = -1;
    if (tail != 0) {
      const int c = tailClass(length, chunk);
#pragma unroll
      for (int k = 0; k < kTailClasses; ++k)
        if (k == c) rank = tailRank[k]++;
    }
    emit(p, length, fullOffset, partialOffset, rank, result);
    fullOffset += length / chunk;
    partialOffset += tail;
  }
  return result;
}

/**
 * The schedule in global memory, computed by one block (see planChunks): each pair's first item
 * index, the item table in execution order, the chunk length, the item count and the work counter.
 */
template <int Threads>
__device__ void buildSchedule(const ScheduleArgs& a, ScheduleStorage<Threads>& storage, int* lengthCache,
                              int cacheCapacity) {
  const ChunkTotals totals = planChunks<Threads>(
      a, storage, lengthCache, cacheCapacity,
      [&](int p, int length, long long fullOffset, long long partialOffset, long long tailRank, const ChunkTotals& t) {
        a.itemStart[p] = static_cast<int>(fullOffset + partialOffset);  // slots are numbered per pair
        const int full = length / t.chunk;
        for (int c = 0; c < full; ++c) a.items[fullOffset + c] = make_int2(p, c);
        if (tailRank >= 0) a.items[t.full + tailRank] = make_int2(p, full);
      });
  if (threadIdx.x == 0) {
    a.itemStart[a.pairCount] = static_cast<int>(totals.full + totals.partial);
    a.schedule->chunkTokens = totals.chunk;
    a.schedule->workCounter = 0;
    a.schedule->itemCount = static_cast<int>(totals.full + totals.partial);
  }
  __syncthreads();
}

/** The schedule as its own one-block kernel (the CUDA-core attention kernel's path). */
__global__ void __launch_bounds__(kScheduleThreads) scheduleKernel(ScheduleArgs a, unsigned long long* __restrict__ trace) {
  __shared__ ScheduleStorage<kScheduleThreads> storage;
  if (trace != nullptr && threadIdx.x == 0) trace[0] = globalNanoseconds();
  allowDependentLaunch();  // the attention blocks may take their SMs while the schedule is computed
  buildSchedule<kScheduleThreads>(a, storage, nullptr, 0);  // a pair per thread: nothing to cache
  if (trace != nullptr && threadIdx.x == 0) trace[1] = globalNanoseconds();
}

__device__ __forceinline__ unsigned int loadAcquire(const unsigned int* address) {
  unsigned int value;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(value) : "l"(address) : "memory");
  return value;
}
__device__ __forceinline__ void storeRelease(unsigned int* address, unsigned int value) {
  asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(address), "r"(value) : "memory");
}

/** 16-byte vector of T built element by element (unaligned rows, or the tail past `D`). */
template <typename T>
__device__ __forceinline__ uint4 packScalar(const T* __restrict__ row, int d, int D) {
  constexpr int W = VectorWidth<T>::value;
  unsigned int words[4];
  if constexpr (W == 4) {
#pragma unroll
    for (int i = 0; i < 4; ++i) words[i] = d + i < D ? __float_as_uint(toFloat<T>(row[d + i])) : 0u;
  } else {
    const unsigned short* bits = reinterpret_cast<const unsigned short*>(row);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const unsigned int low = d + 2 * i < D ? bits[d + 2 * i] : 0u;
      const unsigned int high = d + 2 * i + 1 < D ? bits[d + 2 * i + 1] : 0u;
      words[i] = low | (high << 16);
    }
  }
  return make_uint4(words[0], words[1], words[2], words[3]);
}

/** `E` elements of one K or V row held as raw 16-byte vectors until they are used. */
template <typename T, int E>
struct Fragment {
  static constexpr int W = VectorWidth<T>::value;
  static constexpr int N = E / W;
  uint4 raw[N];

  __device__ __forceinline__ void clear() {
#pragma unroll
    for (int j = 0; j < N; ++j) raw[j] = make_uint4(0u, 0u, 0u, 0u);
  }
  __device__ __forceinline__ void load(const T* __restrict__ row, int d0, int D, bool vectorized) {
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const int d = d0 + j * W;
      if (vectorized) raw[j] = d < D ? __ldg(reinterpret_cast<const uint4*>(row + d)) : make_uint4(0u, 0u, 0u, 0u);
      else raw[j] = packScalar<T>(row, d, D);
    }
  }
  __device__ __forceinline__ void unpack(float (&out)[E]) const {
#pragma unroll
    for (int j = 0; j < N; ++j) unpack16<T>(raw[j], out + j * W);
  }
};

struct DecodeArgs {
  const float* query;
  float* output;
  const void* pool;
  const int* blockTable;
  // The pairs and the schedule built from them (item table, each pair's first item, chunk length,
  // work counter): the tensor-core kernel's block 0 or the schedule kernel writes it, the attention
  // and combine kernels read it.
  ScheduleArgs plan;
  float* partialAcc;  // [maxItems][subgroups][8][D]
  float* partialMaxSum;  // [maxItems][subgroups][8][2]
  int kvHeadCount;
  int groupSize;
  int subgroups;
  int headDim;
  int blockSize;
  float scaleLog2;  // scale * log2(e)
  unsigned long long* trace;  // benchmarks only: the call's timeline (RaggedDecodeAttentionParams::trace)
  // Tensor-core kernel: its block 0 builds the schedule (no schedule kernel before it), then publishes
  // `scheduleEpoch` in `scheduleReady`; every warp waits for that before it reads the schedule.
  unsigned int* scheduleReady;  // null: a schedule kernel ran before
  unsigned int scheduleEpoch;
  // Tensor-core kernel: every block plans the chunks itself in shared memory (after its stage
  // buffers), the work queue counts in `workCounter` and the combine kernel zeroes it again.
  bool localSchedule;
  int* workCounter;  // null: none (the schedule's own counter serves)
  bool dependentLaunch;     // host only: launch the attention and combine kernels as programmatic dependents
  int multiprocessorCount;  // host only: sizes the persistent tensor-core grid
  bool vectorized;  // 16-byte loads are aligned (headDim a multiple of the vector width)
  bool tensorCores;  // host only: the tensor-core kernel serves the call (usesTensorCores)
  bool bulkCopies;   // host only: the tensor-core kernel's stages come by bulk copies (usesBulkCopies)
  long long poolRows;  // host only: K and V rows of the pool (blockCount x 2 x blockSize), for the tensor map
};

template <typename T, int GT, int E>
__global__ void __launch_bounds__(kThreads, 2) decodeKernel(DecodeArgs args) {
  // Tokens each group of lanes keeps in flight: 16-byte loads issued together before first use.
  constexpr int kUnroll = E == VectorWidth<T>::value ? 8 : 4;
  const int item = blockIdx.x;
  const int itemCount = args.plan.schedule->itemCount;
  if (item >= itemCount) return;
  const int D = args.headDim;
  const int subgroup = blockIdx.y;

  const int2 owner = args.plan.items[item];
  const int pair = owner.x;
  const int chunkIndex = owner.y;
  const int chunkCount = args.plan.itemStart[pair + 1] - args.plan.itemStart[pair];
  const int slotItem = args.plan.itemStart[pair] + chunkIndex;  // partial slot: contiguous per pair
  const int queryRow = args.plan.pairs[pair * 4 + 0];
  const int kvHead = args.plan.pairs[pair * 4 + 1];
  const int kvLength = max(args.plan.pairs[pair * 4 + 2], 0);
  const int tableOffset = args.plan.pairs[pair * 4 + 3];
  const int chunk = args.plan.schedule->chunkTokens;
  const int tokenBegin = chunkIndex * chunk;
  const int tokenEnd = min(kvLength, tokenBegin + chunk);
  const int firstHead = subgroup * 8;
  const int headCount = min(GT, args.groupSize - firstHead);
  const long long queryBase =
      ((static_cast<long long>(queryRow) * args.kvHeadCount + kvHead) * args.groupSize + firstHead) * D;

  extern __shared__ __align__(16) unsigned char sharedBytes[];
  long long* sRow = reinterpret_cast<long long*>(sharedBytes);        // [kSubChunk]
  float* sQuery = reinterpret_cast<float*>(sRow + kSubChunk);          // [GT][D]
  float* sAcc = sQuery + GT * D;                                       // [GT][D]
  float* sScores = sAcc + GT * D;                                      // [GT][kSubChunk]
  __shared__ float sMax[GT], sSum[GT], sRescale[GT];

  for (int i = threadIdx.x; i < GT * D; i += kThreads) {
    const int g = i / D;
    sQuery[i] = g < headCount ? args.query[queryBase + i] * args.scaleLog2 : 0.f;
    sAcc[i] = 0.f;
  }
  if (threadIdx.x < GT) {
    sMax[threadIdx.x] = -INFINITY;
    sSum[threadIdx.x] = 0.f;
  }

  const int lanesNeeded = (D + E - 1) / E;
  int L = 1;
  while (L < lanesNeeded) L <<= 1;
  const int lane = threadIdx.x & (L - 1);
  const int tokenGroup = threadIdx.x / L;
  const int tokenGroups = kThreads / L;
  const int d0 = lane * E;
  const bool laneActive = d0 < D;
  const int warp = threadIdx.x >> 5;
  const int laneInWarp = threadIdx.x & 31;
  const T* pool = static_cast<const T*>(args.pool);
  const long long valueOffset = static_cast<long long>(args.blockSize) * D;

  for (int subBegin = tokenBegin; subBegin < tokenEnd; subBegin += kSubChunk) {
    const int n = min(kSubChunk, tokenEnd - subBegin);
    __syncthreads();  // previous sub-chunk done with sRow / sScores; initialisation visible
    if (threadIdx.x < n) {
      const int t = subBegin + threadIdx.x;
      const int block = args.blockTable[tableOffset + t / args.blockSize];
      sRow[threadIdx.x] = (static_cast<long long>(block) * 2 * args.blockSize + t % args.blockSize) * D;
    }
    __syncthreads();

    // Scores: each group of L lanes takes one token; each lane holds E dims of all GT queries.
    {
      float q[GT][E];
#pragma unroll
      for (int g = 0; g < GT; ++g)
#pragma unroll
        for (int e = 0; e < E; ++e) q[g][e] = (laneActive && d0 + e < D) ? sQuery[g * D + d0 + e] : 0.f;

      for (int base = 0; base < n; base += tokenGroups * kUnroll) {
        Fragment<T, E> k[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int index = base + u * tokenGroups + tokenGroup;
          if (index < n && laneActive) k[u].load(pool + sRow[index], d0, D, args.vectorized);
          else k[u].clear();
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int index = base + u * tokenGroups + tokenGroup;
          float key[E];
          k[u].unpack(key);
          float s[GT];
#pragma unroll
          for (int g = 0; g < GT; ++g) {
            float dot = 0.f;
#pragma unroll
            for (int e = 0; e < E; ++e) dot = fmaf(q[g][e], key[e], dot);
            s[g] = dot;
          }
          if (L >= GT) {
            // Reduce-scatter butterfly: log2(GT) halving steps leave one head per lane.
            int offset = L >> 1;
            int head = 0;
#pragma unroll
            for (int count = GT; count > 1; count >>= 1) {
              const bool upper = (lane & offset) != 0;
#pragma unroll
              for (int i = 0; i < count / 2; ++i) {
                const float keep = upper ? s[i + count / 2] : s[i];
                const float send = upper ? s[i] : s[i + count / 2];
                s[i] = keep + __shfl_xor_sync(0xffffffffu, send, offset);
              }
              if (upper) head += count / 2;
              offset >>= 1;
            }
            for (; offset > 0; offset >>= 1) s[0] += __shfl_xor_sync(0xffffffffu, s[0], offset);
            if (index < n && (lane & (L / GT - 1)) == 0) sScores[head * kSubChunk + index] = s[0];
          } else {
#pragma unroll
            for (int g = 0; g < GT; ++g)
              for (int offset = L >> 1; offset > 0; offset >>= 1)
                s[g] += __shfl_xor_sync(0xffffffffu, s[g], offset);
            if (index < n && lane == 0) {
#pragma unroll
              for (int g = 0; g < GT; ++g) sScores[g * kSubChunk + index] = s[g];
            }
          }
        }
      }
    }
    __syncthreads();

    // Online softmax update, one warp per head.
    for (int g = warp; g < GT; g += kThreads / 32) {
      float localMax = -INFINITY;
      for (int i = laneInWarp; i < n; i += 32) localMax = fmaxf(localMax, sScores[g * kSubChunk + i]);
      for (int offset = 16; offset > 0; offset >>= 1)
        localMax = fmaxf(localMax, __shfl_xor_sync(0xffffffffu, localMax, offset));
      const float previousMax = sMax[g];
      const float newMax = fmaxf(previousMax, localMax);
      float localSum = 0.f;
      for (int i = laneInWarp; i < n; i += 32) {
        const float p = exp2f(sScores[g * kSubChunk + i] - newMax);
        sScores[g * kSubChunk + i] = p;
        localSum += p;
      }
      for (int offset = 16; offset > 0; offset >>= 1) localSum += __shfl_xor_sync(0xffffffffu, localSum, offset);
      if (laneInWarp == 0) {
        const float rescale = previousMax == -INFINITY ? 0.f : exp2f(previousMax - newMax);
        sRescale[g] = rescale;
        sSum[g] = sSum[g] * rescale + localSum;
        sMax[g] = newMax;
      }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < GT * D; i += kThreads) sAcc[i] *= sRescale[i / D];
    __syncthreads();

    // Values: the same lane layout, accumulating p * V for every head of the group.
    {
      float acc[GT][E];
#pragma unroll
      for (int g = 0; g < GT; ++g)
#pragma unroll
        for (int e = 0; e < E; ++e) acc[g][e] = 0.f;
      for (int base = 0; base < n; base += tokenGroups * kUnroll) {
        Fragment<T, E> v[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int index = base + u * tokenGroups + tokenGroup;
          if (index < n && laneActive) v[u].load(pool + sRow[index] + valueOffset, d0, D, args.vectorized);
          else v[u].clear();
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int index = base + u * tokenGroups + tokenGroup;
          if (index < n) {
            float value[E];
            v[u].unpack(value);
#pragma unroll
            for (int g = 0; g < GT; ++g) {
              const float p = sScores[g * kSubChunk + index];
#pragma unroll
              for (int e = 0; e < E; ++e) acc[g][e] = fmaf(p, value[e], acc[g][e]);
            }
          }
        }
      }
      // Sum the token groups of this warp, then add the warp's total into shared memory.
#pragma unroll
      for (int g = 0; g < GT; ++g)
#pragma unroll
        for (int e = 0; e < E; ++e)
          for (int offset = L; offset < 32; offset <<= 1)
            acc[g][e] += __shfl_xor_sync(0xffffffffu, acc[g][e], offset);
      if (laneInWarp < L && laneActive) {
#pragma unroll
        for (int g = 0; g < GT; ++g)
#pragma unroll
          for (int e = 0; e < E; ++e)
            if (d0 + e < D) atomicAdd(&sAcc[g * D + d0 + e], acc[g][e]);
      }
    }
  }
  __syncthreads();

  if (chunkCount == 1) {
    for (int i = threadIdx.x; i < headCount * D; i += kThreads) {
      const float sum = sSum[i / D];
      args.output[queryBase + i] = sum > 0.f ? sAcc[i] / sum : 0.f;
    }
  } else {
    const long long slot = static_cast<long long>(slotItem) * args.subgroups + subgroup;
    float* partial = args.partialAcc + slot * 8 * D;
    for (int i = threadIdx.x; i < headCount * D; i += kThreads) partial[i] = sAcc[i];
    if (threadIdx.x < headCount) {
      args.partialMaxSum[(slot * 8 + threadIdx.x) * 2 + 0] = sMax[threadIdx.x];
      args.partialMaxSum[(slot * 8 + threadIdx.x) * 2 + 1] = sSum[threadIdx.x];
    }
  }
}

#include "ragged-decode-attention-mma.cuh"

/** One combine block's (pair, query head): where its partials and its output row are. */
struct CombineTarget {
  int g;           // query head within the subgroup
  int subgroup;
  int firstItem;   // the pair's first partial slot
  int chunkCount;  // the pair's partials
  float* out;      // the head's output row
  unsigned long long* trace;  // the benchmark's timeline entry of this block, or null

  /** Index of partial `c` of this (pair, head) in the partial arrays (times the head dim for partialAcc). */
  __device__ __forceinline__ long long slot(const DecodeArgs& args, int c) const {
    return (static_cast<long long>(firstItem + c) * args.subgroups + subgroup) * 8 + g;
  }
};

/**
 * What every combine block does first: waits for the attention kernel's partials, lets the next kernel
 * launch, frees the context's work counter and schedule flag (block (0, 0)), and finds its pair's
 * partials and its output row (stamping the benchmark's timeline). False where the block has nothing to
 * merge (a pair of one item, or a head past the group).
 */
__device__ __forceinline__ bool combineTarget(const DecodeArgs& args, CombineTarget& t) {
  const int pair = blockIdx.x;
  t.subgroup = blockIdx.y >> 3;
  t.g = blockIdx.y & 7;
  waitForPrerequisiteGrid();  // the attention kernel's partials
  allowDependentLaunch();     // the matmul after it (the output projection) may start loading its weight
  // The attention grid has ended: its work counter is free for the context's next call, and its schedule
  // flag is cleared, so that the next call waits for its own schedule even when it carries the same
  // number (a CUDA graph launched again replays the numbers it was captured with).
  if (blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0) {
    if (args.workCounter != nullptr) *args.workCounter = 0;
    if (args.scheduleReady != nullptr) *args.scheduleReady = 0;
  }
  t.firstItem = args.plan.itemStart[pair];
  t.chunkCount = args.plan.itemStart[pair + 1] - t.firstItem;
  const int firstHead = t.subgroup * 8;
  if (t.chunkCount <= 1 || t.g >= min(8, args.groupSize - firstHead)) return false;
  t.trace = args.trace == nullptr
                ? nullptr
                : args.trace + DecodeTraceLayout::combine(args.multiprocessorCount, blockIdx.x * gridDim.y + blockIdx.y);
  if (t.trace != nullptr && threadIdx.x == 0) t.trace[0] = globalNanoseconds();
  const long long queryRowBase =
      (static_cast<long long>(args.plan.pairs[pair * 4 + 0]) * args.kvHeadCount + args.plan.pairs[pair * 4 + 1]) * args.groupSize;
  t.out = args.output + (queryRowBase + firstHead + t.g) * args.headDim;
  return true;
}

/**
 * Loads partials first, first + stride, ... (`Batch` of them, all in flight together) of a (pair, head):
 * their (max, sum), or (-inf, 0) past the pair's last, and what `load(ok, slot)` returns for each.
 */
template <int Batch, typename Value, typename Load>
__device__ __forceinline__ void loadPartials(const DecodeArgs& args, const CombineTarget& t, int first, int stride,
                                             float2 (&maxSums)[Batch], Value (&values)[Batch], Load&& load) {
  const float2* maxSum = reinterpret_cast<const float2*>(args.partialMaxSum);
#pragma unroll
  for (int k = 0; k < Batch; ++k) {
    const int c = first + k * stride;
    const bool ok = c < t.chunkCount;
    const long long slot = t.slot(args, ok ? c : 0);
    maxSums[k] = ok ? maxSum[slot] : make_float2(-INFINITY, 0.f);
    values[k] = load(ok, slot);
  }
}

constexpr int kCombineThreads = 128;
// Chunks merged per round: each thread loads its dimension of this many partials into registers, and
// the first threads their (max, sum), all before the round's one barrier.
constexpr int kCombineTile = 32;

/**
 * Merges the partials of one (pair, query head) split over several items: one block each, a thread
 * per output dimension. A pair of up to kCombineTile items costs one round of loads (its partials are
 * independent of each other and of the maxima, so they are all in flight together); longer pairs take
 * a round per kCombineTile items, folded online (running maximum, rescaled numerator and denominator).
 */
__global__ void __launch_bounds__(kCombineThreads) combineKernel(DecodeArgs args) {
  CombineTarget t;
  if (!combineTarget(args, t)) return;
  const int chunkCount = t.chunkCount;
  const int D = args.headDim;
  const int dimensionRounds = (D + kCombineThreads - 1) / kCombineThreads;  // 1 up to head dim 128
  __shared__ float2 sMaxSum[kCombineTile];

  for (int dRound = 0; dRound < dimensionRounds; ++dRound) {
    const int d = dRound * kCombineThreads + threadIdx.x;
    float maximum = -INFINITY, denominator = 0.f, numerator = 0.f;
    for (int tile = 0; tile < chunkCount; tile += kCombineTile) {
      const int count = min(kCombineTile, chunkCount - tile);
      if (tile > 0) __syncthreads();  // the previous round's (max, sum) are read
      if (threadIdx.x < count)
        sMaxSum[threadIdx.x] = reinterpret_cast<const float2*>(args.partialMaxSum)[t.slot(args, tile + threadIdx.x)];
      float value[kCombineTile];
#pragma unroll
      for (int j = 0; j < kCombineTile; ++j)
        value[j] = j < count && d < D ? args.partialAcc[t.slot(args, tile + j) * D + d] : 0.f;
      __syncthreads();
      float tileMax = -INFINITY;
      for (int j = 0; j < count; ++j) tileMax = fmaxf(tileMax, sMaxSum[j].x);
      const float next = fmaxf(maximum, tileMax);
      if (next == -INFINITY) continue;  // no scores yet (empty chunks)
      const float rescale = maximum == -INFINITY ? 0.f : exp2f(maximum - next);
      numerator *= rescale;
      denominator *= rescale;
      maximum = next;
#pragma unroll
      for (int j = 0; j < kCombineTile; ++j) {
        if (j < count) {
          const float2 maxSum = sMaxSum[j];
          const float weight = maxSum.x == -INFINITY ? 0.f : exp2f(maxSum.x - maximum);
          denominator += weight * maxSum.y;
          numerator += weight * value[j];
        }
      }
    }
    if (d < D) t.out[d] = denominator > 0.f ? numerator / denominator : 0.f;
    if (dRound + 1 < dimensionRounds) __syncthreads();  // sMaxSum is reloaded
  }
  if (t.trace != nullptr && threadIdx.x == 0) t.trace[1] = globalNanoseconds();
}

/** `a` times `factor`, lane by lane. */
__device__ __forceinline__ float4 scaled(float4 a, float factor) {
  return make_float4(a.x * factor, a.y * factor, a.z * factor, a.w * factor);
}
/** `sum` + `weight` times `a`, lane by lane. */
__device__ __forceinline__ float4 addScaled(float4 sum, float weight, float4 a) {
  return make_float4(sum.x + weight * a.x, sum.y + weight * a.y, sum.z + weight * a.z, sum.w + weight * a.w);
}

/** Partials each warp of combineVectorKernel loads before it folds them (all in flight together). */
constexpr int kCombineVectorBatch = 8;
#ifdef FAIRKV_NO_VECTOR_COMBINE  // benchmark experiments only
constexpr bool kUseVectorCombine = false;
#else
constexpr bool kUseVectorCombine = true;
#endif

/**
 * The combine in one round of 16-byte loads (head dims up to 128, a multiple of 4): one block of `Warps`
 * warps per (pair, query head); warp w takes partials w, w + Warps, ...; lane l holds dims 4l..4l+3 of
 * each. A warp loads the (max, sum) and the accumulators of up to kCombineVectorBatch partials together
 * (no barrier between the maxima and the values), folds them online against its own running maximum,
 * and the warps' sums are merged through shared memory. combineKernel's thread per dimension made four
 * times as many load requests and waited for the maxima before it used the values: 3.3-5.7 us per block
 * on an H100 against 1.5-2.1 us here (batches 16 and 64).
 */
template <int Warps>
__global__ void __launch_bounds__(32 * Warps) combineVectorKernel(DecodeArgs args) {
  CombineTarget t;
  if (!combineTarget(args, t)) return;
  const int chunkCount = t.chunkCount;
  const int D = args.headDim;
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const bool active = 4 * lane < D;
  float maximum = -INFINITY, denominator = 0.f;
  float4 numerator = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int c0 = warp; c0 < chunkCount; c0 += Warps * kCombineVectorBatch) {
    float2 ms[kCombineVectorBatch];
    float4 value[kCombineVectorBatch];
    loadPartials(args, t, c0, Warps, ms, value, [&](bool ok, long long slot) {
      return ok && active ? reinterpret_cast<const float4*>(args.partialAcc + slot * D)[lane] : make_float4(0.f, 0.f, 0.f, 0.f);
    });
    float next = maximum;
#pragma unroll
    for (int k = 0; k < kCombineVectorBatch; ++k) next = fmaxf(next, ms[k].x);
    if (next == -INFINITY) continue;  // no scores yet (empty chunks)
    const float rescale = maximum == -INFINITY ? 0.f : exp2f(maximum - next);
    maximum = next;
    denominator *= rescale;
    numerator = scaled(numerator, rescale);
#pragma unroll
    for (int k = 0; k < kCombineVectorBatch; ++k) {
      const float weight = ms[k].x == -INFINITY ? 0.f : exp2f(ms[k].x - maximum);
      denominator += weight * ms[k].y;
      numerator = addScaled(numerator, weight, value[k]);
    }
  }
  __shared__ float4 sNumerator[Warps][32];
  __shared__ float2 sMaxDenominator[Warps];
  sNumerator[warp][lane] = numerator;
  if (lane == 0) sMaxDenominator[warp] = make_float2(maximum, denominator);
  __syncthreads();
  if (warp == 0 && active) {
    float largest = -INFINITY;
#pragma unroll
    for (int w = 0; w < Warps; ++w) largest = fmaxf(largest, sMaxDenominator[w].x);
    float4 sum = make_float4(0.f, 0.f, 0.f, 0.f);
    float total = 0.f;
    if (largest != -INFINITY) {
#pragma unroll
      for (int w = 0; w < Warps; ++w) {
        const float2 md = sMaxDenominator[w];
        const float weight = md.x == -INFINITY ? 0.f : exp2f(md.x - largest);
        total += weight * md.y;
        sum = addScaled(sum, weight, sNumerator[w][lane]);
      }
    }
    const float inverse = total > 0.f ? 1.f / total : 0.f;
    const float4 result = scaled(sum, inverse);
    if ((reinterpret_cast<uintptr_t>(t.out) & 15) == 0) {
      reinterpret_cast<float4*>(t.out)[lane] = result;
    } else {  // an output view at an offset that is not a multiple of 4 floats
      t.out[4 * lane] = result.x;
      t.out[4 * lane + 1] = result.y;
      t.out[4 * lane + 2] = result.z;
      t.out[4 * lane + 3] = result.w;
    }
  }
  if (t.trace != nullptr && threadIdx.x == 0) t.trace[1] = globalNanoseconds();
}

/**
 * Threads of a block of the combine for many partials (combineManyKernel): kCombineManyGroups groups of
 * kCombineManyDims, each a thread per output dimension.
 */
constexpr int kCombineManyDims = 128;
constexpr int kCombineManyGroups = 4;
constexpr int kCombineManyThreads = kCombineManyDims * kCombineManyGroups;
/** Partials a thread loads before it folds them (all in flight together). */
constexpr int kCombineManyBatch = 8;

/**
 * The combine for pairs split into many items (small calls: tens to hundreds each; combineKernel merges
 * one round of 32 at a time). Merges the partials of one (pair, query head): one block each. First the
 * block finds the largest running maximum of all the partials; every partial's weight is then fixed
 * (2^(max_j - max)), so the partials are independent and all of a thread's loads can be in flight
 * together. The partials are split over kCombineManyGroups groups of threads, a thread per output dimension
 * in each group (more rounds for head dims above kCombineManyDims), and the groups' sums are added through
 * shared memory. A pair split into many items (small calls: hundreds) then costs a few rounds of loads,
 * not one round per 32 partials.
 */
__global__ void __launch_bounds__(kCombineManyThreads) combineManyKernel(DecodeArgs args) {
  CombineTarget t;
  if (!combineTarget(args, t)) return;
  const int chunkCount = t.chunkCount;
  const int D = args.headDim;
  const float2* maxSum = reinterpret_cast<const float2*>(args.partialMaxSum);

  // The largest running maximum of the pair's partials (-inf: no scores at all).
  __shared__ float sMax[kCombineManyThreads / 32];
  float largest = -INFINITY;
  for (int c = threadIdx.x; c < chunkCount; c += kCombineManyThreads) largest = fmaxf(largest, maxSum[t.slot(args, c)].x);
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) largest = fmaxf(largest, __shfl_xor_sync(0xffffffffu, largest, offset));
  if ((threadIdx.x & 31) == 0) sMax[threadIdx.x >> 5] = largest;
  __syncthreads();
  largest = sMax[0];
#pragma unroll
  for (int w = 1; w < kCombineManyThreads / 32; ++w) largest = fmaxf(largest, sMax[w]);

  __shared__ float sNumerator[kCombineManyGroups][kCombineManyDims];
  __shared__ float sDenominator[kCombineManyGroups];
  const int group = threadIdx.x / kCombineManyDims;
  const int lane = threadIdx.x % kCombineManyDims;
  for (int d0 = 0; d0 < D; d0 += kCombineManyDims) {
    const int d = d0 + lane;
    float numerator = 0.f, denominator = 0.f;
    if (largest != -INFINITY) {
      // this group's partials: group, group + kCombineManyGroups, ...; kCombineManyBatch of them in flight at once
      for (int c = group; c < chunkCount; c += kCombineManyGroups * kCombineManyBatch) {
        float2 weightSum[kCombineManyBatch];
        float value[kCombineManyBatch];
        loadPartials(args, t, c, kCombineManyGroups, weightSum, value,
                     [&](bool ok, long long slot) { return ok && d < D ? args.partialAcc[slot * D + d] : 0.f; });
#pragma unroll
        for (int k = 0; k < kCombineManyBatch; ++k) {
          const float weight = weightSum[k].x == -INFINITY ? 0.f : exp2f(weightSum[k].x - largest);
          denominator += weight * weightSum[k].y;
          numerator += weight * value[k];
        }
      }
    }
    sNumerator[group][lane] = numerator;
    if (lane == 0) sDenominator[group] = denominator;
    __syncthreads();
    if (group == 0 && d < D) {
      float sumNumerator = sNumerator[0][lane], sumDenominator = sDenominator[0];
#pragma unroll
      for (int k = 1; k < kCombineManyGroups; ++k) {
        sumNumerator += sNumerator[k][lane];
        sumDenominator += sDenominator[k];
      }
      t.out[d] = sumDenominator > 0.f ? sumNumerator / sumDenominator : 0.f;
    }
    if (d0 + kCombineManyDims < D) __syncthreads();  // the shared sums are written again
  }
  if (t.trace != nullptr && threadIdx.x == 0) t.trace[1] = globalNanoseconds();
}

template <typename T, int GT, int E>
void launchDecode(const DecodeArgs& args, int maxItems, size_t sharedBytes, cudaStream_t stream) {
  auto kernel = decodeKernel<T, GT, E>;
  checkCuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(sharedBytes)),
            "cudaFuncSetAttribute(ragged-decode-attention)");
  kernel<<<dim3(maxItems, args.subgroups), kThreads, sharedBytes, stream>>>(args);
  checkLaunch("ragged-decode-attention kernel");
}

template <typename T, int E>
void dispatchGroup(const DecodeArgs& args, int maxItems, size_t sharedPerHead, size_t sharedFixed,
                   cudaStream_t stream) {
  const int group = min(args.groupSize, 8);
  if (group <= 1) launchDecode<T, 1, E>(args, maxItems, sharedFixed + sharedPerHead * 1, stream);
  else if (group <= 2) launchDecode<T, 2, E>(args, maxItems, sharedFixed + sharedPerHead * 2, stream);
  else if (group <= 4) launchDecode<T, 4, E>(args, maxItems, sharedFixed + sharedPerHead * 4, stream);
  else launchDecode<T, 8, E>(args, maxItems, sharedFixed + sharedPerHead * 8, stream);
}

/**
 * Whether the tensor-core kernel serves a call: any pool dtype (TF32 for f32), head dim 64 or 128,
 * 16-byte aligned pool, unless a benchmark turned it off. The one place that decides it: the schedule
 * is then built inside that kernel.
 */
bool usesTensorCores(const RaggedDecodeAttentionParams& params, bool aligned) {
  return params.tensorCores && aligned && (params.headDim == 64 || params.headDim == 128);
}

/** Blocks of the persistent tensor-core kernel: as many per SM as fit (its occupancy), never more than the work. */
unsigned int persistentMmaBlocks(long long work, int multiprocessors) {
  const long long warpsNeeded = (work + MmaStage<1>::kWarps - 1) / MmaStage<1>::kWarps;
  return static_cast<unsigned int>(std::max(
      1LL, std::min<long long>(static_cast<long long>(kMmaBlocksPerMultiprocessor) * multiprocessors, warpsNeeded)));
}

/** Tokens of one stage of the tensor-core kernel for a pool of `dtype` (MmaStage::kTokens). */
int mmaStageTokens(DType dtype) {
  return dtype == DType::F32 ? MmaStage<1, StageCopy::Bulk, 4>::kTokens : MmaStage<1, StageCopy::Bulk, 2>::kTokens;
}

/**
 * Whether the tensor-core kernel's stages come by bulk copies (StageCopy::Bulk): compute capability
 * 9.0+, the caller allowed them, stages that never straddle a pool block, and a known pool size.
 */
bool usesBulkCopies(const RaggedDecodeAttentionParams& params) {
  return params.bulkCopies && params.blockSize % mmaStageTokens(params.poolDType) == 0 && params.blockCount > 0;
}

#ifndef FAIRKV_TMA_L2_PROMOTION  // benchmark experiments only
#define FAIRKV_TMA_L2_PROMOTION CU_TENSOR_MAP_L2_PROMOTION_L2_256B
#endif
/**
 * A 2D tensor map over the pool's K and V rows (`headDim` elements each), boxes of 128 bytes by one
 * stage's rows (64 x 16 for 16-bit pools, 32 x 8 for f32), 128-byte swizzle. False where the driver has
 * no cuTensorMapEncodeTiled or refuses the map: the caller then streams with per-lane copies.
 */
bool poolTensorMap(const void* pool, DType dtype, int headDim, long long rows, CUtensorMap& map) {
  return swizzledRowsTensorMap(pool, dtype, headDim, rows, mmaStageTokens(dtype), map, FAIRKV_TMA_L2_PROMOTION);
}

template <typename T, int H, StageCopy Copy>
void launchMma(DecodeArgs args, int maxItems, const CUtensorMap& poolMap, cudaStream_t stream) {
  size_t shared = mmaSharedBytes<H>(Copy);
  if (args.localSchedule) {
    // The per-block schedule where its tables fit beside the stage buffers (two blocks per SM);
    // otherwise block 0 builds the schedule in global memory and publishes it.
    const size_t tables = localScheduleBytes(args.plan.pairCount);
    if (shared + tables <= kMmaSharedBudget) shared += tables;
    else args.localSchedule = false;
  }
  checkCuda(cudaFuncSetAttribute(decodeMmaKernel<T, H, Copy>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(shared)),
            "cudaFuncSetAttribute(ragged-decode-attention mma)");
  launchDependent(decodeMmaKernel<T, H, Copy>,
                  dim3(persistentMmaBlocks(static_cast<long long>(maxItems) * args.subgroups, args.multiprocessorCount)),
                  dim3(kMmaThreads), shared, stream, args.dependentLaunch, args, poolMap);
  checkLaunch("ragged-decode-attention mma kernel");
}

template <typename T>
void dispatchWidth(DecodeArgs args, int maxItems, bool aligned, cudaStream_t stream) {
  constexpr int W = VectorWidth<T>::value;
  const int D = args.headDim;
  const size_t sharedPerHead = sizeof(float) * (2 * static_cast<size_t>(D) + kSubChunk);
  const size_t sharedFixed = sizeof(long long) * kSubChunk;
  args.vectorized = aligned && D % W == 0;
  // Tensor-core path: head dim 64 or 128, aligned rows (m16n8k16 for f16/bf16 pools, TF32 for f32).
  if (args.tensorCores) {
    CUtensorMap poolMap{};
    const DType poolDType = std::is_same_v<T, float>           ? DType::F32
                            : std::is_same_v<T, __nv_bfloat16> ? DType::BF16
                                                               : DType::F16;
    if (args.bulkCopies && poolTensorMap(args.pool, poolDType, D, args.poolRows, poolMap)) {
      if (D == 64) launchMma<T, 1, StageCopy::Bulk>(args, maxItems, poolMap, stream);
      else launchMma<T, 2, StageCopy::Bulk>(args, maxItems, poolMap, stream);
    } else {
      if (D == 64) launchMma<T, 1, StageCopy::Elements>(args, maxItems, poolMap, stream);
      else launchMma<T, 2, StageCopy::Elements>(args, maxItems, poolMap, stream);
    }
    return;
  }
  if ((D + W - 1) / W <= 32) dispatchGroup<T, W>(args, maxItems, sharedPerHead, sharedFixed, stream);
  else dispatchGroup<T, 2 * W>(args, maxItems, sharedPerHead, sharedFixed, stream);
}

}  // namespace

size_t raggedDecodeAttentionWorkspaceBytes(const RaggedDecodeAttentionParams& params) {
  const int subgroups = (params.groupSize + 7) / 8;
  const long long maxItems = static_cast<long long>(params.pairCount) + std::max(params.targetItems, params.mostItems);
  size_t bytes = 256;  // schedule
  bytes += ((static_cast<size_t>(params.pairCount) + 1) * sizeof(int) + 255) / 256 * 256;
  bytes += (static_cast<size_t>(maxItems) * sizeof(int2) + 255) / 256 * 256;
  bytes += static_cast<size_t>(maxItems) * subgroups * 8 * params.headDim * sizeof(float);
  bytes += static_cast<size_t>(maxItems) * subgroups * 8 * 2 * sizeof(float);
  return bytes;
}

int maxRaggedDecodeHeadDim(DType poolDType) { return poolDType == DType::F32 ? 256 : 512; }

void raggedDecodeAttention(const RaggedDecodeAttentionParams& params, void* workspace, cudaStream_t stream) {
  if (params.pairCount <= 0) return;
  if (params.pairCount > kMaxPairs)
    throw std::invalid_argument("ragged-decode-attention: pairCount " + std::to_string(params.pairCount) +
                                " exceeds the largest supported (" + std::to_string(kMaxPairs) + ")");
  if (params.headDim > maxRaggedDecodeHeadDim(params.poolDType))
    throw std::invalid_argument("ragged-decode-attention: headDim " + std::to_string(params.headDim) +
                                " exceeds the largest supported (" +
                                std::to_string(maxRaggedDecodeHeadDim(params.poolDType)) + ")");
  const int subgroups = (params.groupSize + 7) / 8;
  const int mostItems = std::max(params.targetItems, params.mostItems);
  const int maxItems = params.pairCount + mostItems;
  unsigned char* cursor = static_cast<unsigned char*>(workspace);
  Schedule* schedule = reinterpret_cast<Schedule*>(cursor);
  cursor += 256;
  int* itemStart = reinterpret_cast<int*>(cursor);
  cursor += ((static_cast<size_t>(params.pairCount) + 1) * sizeof(int) + 255) / 256 * 256;
  int2* items = reinterpret_cast<int2*>(cursor);
  cursor += (static_cast<size_t>(maxItems) * sizeof(int2) + 255) / 256 * 256;
  float* partialAcc = reinterpret_cast<float*>(cursor);
  cursor += static_cast<size_t>(maxItems) * subgroups * 8 * params.headDim * sizeof(float);
  float* partialMaxSum = reinterpret_cast<float*>(cursor);

  const ScheduleArgs plan{params.pairs,          params.pairCount,           params.targetItems,
                           mostItems,             params.preferredChunkTokens, params.minChunkTokens,
                           params.smallCallChunkTokens, itemStart,             items,
                           schedule};
  const bool aligned = (reinterpret_cast<uintptr_t>(params.pool) % 16) == 0;
  const bool tensorCores = usesTensorCores(params, aligned);
  // The tensor-core kernel builds its own schedule (its block 0) where the caller gave it a flag.
  const bool fused = tensorCores && params.scheduleReady != nullptr;
  if (!fused) {
    scheduleKernel<<<1, kScheduleThreads, 0, stream>>>(plan, params.trace);
    checkLaunch("ragged-decode-attention schedule kernel");
  }

  DecodeArgs args{};
  args.query = params.query;
  args.output = params.output;
  args.pool = params.pool;
  args.blockTable = params.blockTable;
  args.plan = plan;
  args.partialAcc = partialAcc;
  args.partialMaxSum = partialMaxSum;
  args.kvHeadCount = params.kvHeadCount;
  args.groupSize = params.groupSize;
  args.subgroups = subgroups;
  args.headDim = params.headDim;
  args.blockSize = params.blockSize;
  args.scaleLog2 = params.scale * kLog2e;
  args.dependentLaunch = params.dependentLaunch;
  args.trace = params.trace;
  args.scheduleReady = fused ? params.scheduleReady : nullptr;
  args.scheduleEpoch = params.scheduleEpoch;
  args.localSchedule = fused && params.localSchedule && params.workCounter != nullptr;
  args.workCounter = args.localSchedule ? params.workCounter : nullptr;
  args.multiprocessorCount = params.multiprocessorCount;
  args.tensorCores = tensorCores;
  args.bulkCopies = tensorCores && usesBulkCopies(params);
  args.poolRows = static_cast<long long>(params.blockCount) * 2 * params.blockSize;

  switch (params.poolDType) {
    case DType::F32: dispatchWidth<float>(args, maxItems, aligned, stream); break;
    case DType::F16: dispatchWidth<__half>(args, maxItems, aligned, stream); break;
    case DType::BF16: dispatchWidth<__nv_bfloat16>(args, maxItems, aligned, stream); break;
    default: throw std::invalid_argument("ragged-decode-attention: pool dtype must be f32, f16 or bf16");
  }
  // The combine: for head dims up to 128, in one round of 16-byte loads (combineVectorKernel); measured on
  // an H100 (bench/cuda-decode-attention/NOTES.md, session 23), each block took 1.5-2.1 us instead of 3.3-5.7
  // (batches 16 and 64); 16 warps per block where pairs average 64 items or more (1-2 requests of 8 kv
  // heads) were up to 8% faster there than 4, and 0-5% slower at 4-8 requests. Wider heads: calls of few
  // pairs split each into many items (16 or more on average) take the combine for many partials (5-22%
  // faster than combineKernel at 1-2 requests, 1-3% slower on calls of hundreds of pairs).
  const long long pairs = params.pairCount;
  const dim3 grid(params.pairCount, subgroups * 8);  // a block per (pair, query head)
  if (params.headDim <= 128 && params.headDim % 4 == 0 && kUseVectorCombine) {
    if (pairs * 64 <= params.targetItems)
      launchDependent(combineVectorKernel<16>, grid, dim3(16 * 32), 0, stream, args.dependentLaunch, args);
    else
      launchDependent(combineVectorKernel<4>, grid, dim3(4 * 32), 0, stream, args.dependentLaunch, args);
  } else if (pairs * 16 <= params.targetItems) {
    launchDependent(combineManyKernel, grid, dim3(kCombineManyThreads), 0, stream, args.dependentLaunch, args);
  } else {
    launchDependent(combineKernel, grid, dim3(kCombineThreads), 0, stream, args.dependentLaunch, args);
  }
}

}  // namespace fairkv
