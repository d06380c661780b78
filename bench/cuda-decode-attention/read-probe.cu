// DRAM read-rate probe for the decode attention's access pattern (issue 8, §5a): how fast can an H100
// read a paged KV pool at all, with no attention math, for each way of asking for the bytes?
//
// The decode attention kernel streams 8 KB stages (16 K rows + 16 V rows of 256 bytes) per warp from a
// shuffled pool of 4 KB blocks by bulk tensor copies; cuDNN's flash kernel streams 32 KB contiguous
// tiles per block of 4 warps by 16-byte cp.async. This program reads the same bytes in each shape:
//   * a group = one CTA of W warps streaming tiles of `tileBlocks` pool blocks, `depth` tile buffers
//     (depth - 1 tiles in flight), G groups per SM, persistent over units of equal length;
//   * how a tile is asked for: one 1D bulk copy per pool block (`bulk`), the attention kernel's 2D
//     tensor-map boxes of 64 columns x 16 rows with the 128-byte swizzle and 256-byte L2 promotion
//     (`tma2d`), or 16-byte cp.async by every thread (`cg`: L1 bypassed with the 256-byte L2 prefetch;
//     `ca`: through L1);
//   * the pool's block table shuffled (as a serving pool ends up) or in order (contiguous K/V);
//   * optionally a fixed busy wait per tile (the attention math's time, roughly) and a pass over the
//     tile in shared memory.
// Baselines in the same run: cudaMemcpy device to device (bytes read + written over the time) and a
// grid-stride 16-byte load kernel (read only).
//
// Build and run on a GPU machine (`packages/kernels-cuda/scripts/device/run-device.sh read-probe` does both,
// for 528 MiB in 512 KB units, one per warp as at batch 16, and 2,112 MiB in 1 MB units):
//   nvcc -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -I packages/kernels-cuda/native \
//        -o /tmp/read-probe bench/cuda-decode-attention/read-probe.cu
//   /tmp/read-probe [total MiB, default 2048] [repeats, default 15] [unit KiB, default 1024] [names] > result.json
// (names: only the shapes whose name contains one of these comma-separated words)
// Sizes are binary (MiB, KiB); rates are decimal GB/s, as every benchmark here reports them.
#include <cuda.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/tensor-core.cuh"

using namespace fairkv;

namespace {

enum class Ask : int { Bulk = 0, Tma2d = 1, CpAsyncCg = 2, CpAsyncCa = 3 };
const char* askName(Ask ask) {
  switch (ask) {
    case Ask::Bulk: return "bulk";
    case Ask::Tma2d: return "tma2d";
    case Ask::CpAsyncCg: return "cg";
    case Ask::CpAsyncCa: return "ca";
  }
  return "?";
}

struct Params {
  const char* pool;
  const int* table;     // pool block of each position of the stream
  int blockBytes;       // bytes per pool block (rows of 256 bytes)
  int tileBlocks;       // pool blocks per tile
  int unitTiles;        // tiles per unit of work
  int units;
  int depth;            // tile buffers per group
  Ask ask;
  int spinCycles;       // busy wait per tile (the math's time)
  int touch;            // read the tile from shared memory
  int split;            // bulk asks, 2 blocks per tile (K, V), 2 buffers: a barrier per block, and the next K
                        // asked for halfway through the math (as soon as the K block has been read)
  unsigned long long* sink;
};

__device__ __forceinline__ void bulkLoad1d(void* shared, const void* global, unsigned bytes, unsigned long long* barrier) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
          sharedAddress(shared)),
      "l"(global), "r"(bytes), "r"(sharedAddress(barrier))
      : "memory");
}

__global__ void __launch_bounds__(256) streamKernel(const __grid_constant__ CUtensorMap map, Params p) {
  extern __shared__ __align__(1024) unsigned char shared[];
  const int tileBytes = p.blockBytes * p.tileBlocks;
  unsigned long long* barriers = reinterpret_cast<unsigned long long*>(shared + p.depth * tileBytes);
  const int tid = threadIdx.x;
  const bool bulkAsk = p.ask == Ask::Bulk || p.ask == Ask::Tma2d;
  if (tid == 0 && bulkAsk)
    for (int b = 0; b < 2 * p.depth; ++b) barrierInit(&barriers[b], 1);
  __syncthreads();

  // This group's tiles: units blockIdx.x, blockIdx.x + gridDim.x, ... (equal lengths: a static split).
  const int myUnits = p.units > static_cast<int>(blockIdx.x) ? (p.units - 1 - blockIdx.x) / gridDim.x + 1 : 0;
  const int n = myUnits * p.unitTiles;
  auto tileOf = [&](int i) { return (blockIdx.x + (i / p.unitTiles) * gridDim.x) * p.unitTiles + i % p.unitTiles; };

  auto issue = [&](int i) {
    const int buffer = i % p.depth;
    unsigned char* dst = shared + buffer * tileBytes;
    const int* blocks = p.table + static_cast<long long>(tileOf(i)) * p.tileBlocks;
    if (bulkAsk) {
      if (tid == 0) {
        barrierArriveExpecting(&barriers[buffer], tileBytes);
        for (int j = 0; j < p.tileBlocks; ++j) {
          if (p.ask == Ask::Bulk) {
            bulkLoad1d(dst + j * p.blockBytes, p.pool + static_cast<long long>(blocks[j]) * p.blockBytes, p.blockBytes,
                       &barriers[buffer]);
          } else {
            const int rows = p.blockBytes / 256;
            for (int r = 0; r < rows; r += 16)
              for (int half = 0; half < 2; ++half)
                tileLoad2d(dst + j * p.blockBytes + half * (rows * 128) + r * 128, &map, half * 64,
                           blocks[j] * rows + r, &barriers[buffer]);
          }
        }
      }
    } else {
      const int pieces = tileBytes / 16;
      for (int q = tid; q < pieces; q += blockDim.x) {
        const int j = (q * 16) / p.blockBytes;
        const int offset = (q * 16) % p.blockBytes;
        const char* src = p.pool + static_cast<long long>(blocks[j]) * p.blockBytes + offset;
        if (p.ask == Ask::CpAsyncCg) copyAsync16(dst + q * 16, src, true);
        else copyAsync16ThroughL1(dst + q * 16, src, true);
      }
      commitAsync();
    }
  };

  unsigned long long acc = 0;
  const auto spin = [&](int cycles) {
    const long long until = clock64() + cycles;
    while (clock64() < until) {
    }
  };
  const auto touchTile = [&](int i, int from, int to) {
    const uint4* tile = reinterpret_cast<const uint4*>(shared + (i % p.depth) * tileBytes);
    for (int q = from + tid; q < to; q += blockDim.x) {
      const uint4 v = tile[q];
      acc += v.x ^ v.y ^ v.z ^ v.w;
    }
  };
  if (p.split) {
    // one bulk copy per block; block 0 of a tile is its K, block 1 its V
    const auto issueHalf = [&](int i, int half) {
      const int buffer = i % 2;
      if (tid == 0) {
        unsigned long long* barrier = &barriers[2 * buffer + half];
        const int block = p.table[static_cast<long long>(tileOf(i)) * 2 + half];
        barrierArriveExpecting(barrier, p.blockBytes);
        bulkLoad1d(shared + buffer * tileBytes + half * p.blockBytes,
                   p.pool + static_cast<long long>(block) * p.blockBytes, p.blockBytes, barrier);
      }
    };
    if (n > 0) issueHalf(0, 0), issueHalf(0, 1);
    if (n > 1) issueHalf(1, 0);
    for (int i = 0; i < n; ++i) {
      if (i + 1 < n) issueHalf(i + 1, 1);
      barrierWait(&barriers[2 * (i % 2)], (i / 2) & 1);
      spin(p.spinCycles / 2);
      if (p.touch) touchTile(i, 0, p.blockBytes / 16);
      __syncthreads();
      if (i + 2 < n) issueHalf(i + 2, 0);
      barrierWait(&barriers[2 * (i % 2) + 1], (i / 2) & 1);
      spin(p.spinCycles - p.spinCycles / 2);
      if (p.touch) touchTile(i, p.blockBytes / 16, tileBytes / 16);
      __syncthreads();
    }
    if (acc == 0x9e3779b97f4a7c15ull) p.sink[0] = acc;
    return;
  }
  for (int i = 0; i < p.depth - 1 && i < n; ++i) issue(i);
  for (int i = 0; i < n; ++i) {
    if (i + p.depth - 1 < n) issue(i + p.depth - 1);
    else if (!bulkAsk) commitAsync();  // keep the group count: wait_group counts from the newest
    if (bulkAsk) {
      barrierWait(&barriers[i % p.depth], (i / p.depth) & 1);
    } else {
      // depth - 1 groups may stay pending; depth is 2 or 3 here
      if (p.depth == 2) waitAsync<1>();
      else waitAsync<2>();
      __syncthreads();
    }
    spin(p.spinCycles);
    if (p.touch) touchTile(i, 0, tileBytes / 16);
    __syncthreads();  // the buffer is refilled by the next iteration's issue
  }
  if (acc == 0x9e3779b97f4a7c15ull) p.sink[0] = acc;  // keeps the reads
}

__global__ void readKernel(const uint4* data, long long count, unsigned long long* sink) {
  unsigned long long acc = 0;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const uint4 v = __ldcs(&data[i]);
    acc += v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b97f4a7c15ull) sink[0] = acc;
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    exit(1);
  }
}

template <typename Launch>
double medianMs(Launch launch, int repeats) {
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "event");
  check(cudaEventCreate(&b), "event");
  for (int w = 0; w < 3; ++w) launch();
  std::vector<float> times;
  for (int r = 0; r < repeats; ++r) {
    check(cudaEventRecord(a), "record");
    launch();
    check(cudaEventRecord(b), "record");
    check(cudaEventSynchronize(b), "sync");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, a, b), "elapsed");
    times.push_back(ms);
  }
  check(cudaGetLastError(), "launch");
  std::sort(times.begin(), times.end());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return times[times.size() / 2];
}

struct Config {
  std::string name;
  Ask ask;
  int warps;        // per group
  int groupsPerSm;
  int tileBlocks;   // 4 KB pool blocks per tile
  int depth;
  bool shuffled;
  int spinCycles;
  int touch;
  int split = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const long long totalMb = argc > 1 ? atoll(argv[1]) : 2048;
  const int repeats = argc > 2 ? atoi(argv[2]) : 15;
  // bytes per unit of work (default 1 MB: 2,048 tokens of K and V, the attention schedule's chunk)
  const int unitBytes = (argc > 3 ? atoi(argv[3]) : 1024) * 1024;
  // only the shapes whose name contains one of these comma-separated words (default: all)
  const std::string only = argc > 4 ? argv[4] : "";
  const int blockBytes = 4096;  // 16 tokens x 128 dims x bf16
  const long long blocks = totalMb * 1024 * 1024 / blockBytes;
  const long long bytes = blocks * blockBytes;
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "properties");
  const int sms = prop.multiProcessorCount;

  char* pool = nullptr;
  char* other = nullptr;
  check(cudaMalloc(&pool, bytes), "pool");
  check(cudaMalloc(&other, bytes), "copy target");
  check(cudaMemset(pool, 1, bytes), "memset");
  unsigned long long* sink = nullptr;
  check(cudaMalloc(&sink, 8), "sink");
  std::vector<int> ordered(blocks), shuffled(blocks);
  std::iota(ordered.begin(), ordered.end(), 0);
  shuffled = ordered;
  std::mt19937 rng(7);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  int* orderedTable = nullptr;
  int* shuffledTable = nullptr;
  check(cudaMalloc(&orderedTable, blocks * 4), "table");
  check(cudaMalloc(&shuffledTable, blocks * 4), "table");
  check(cudaMemcpy(orderedTable, ordered.data(), blocks * 4, cudaMemcpyHostToDevice), "table");
  check(cudaMemcpy(shuffledTable, shuffled.data(), blocks * 4, cudaMemcpyHostToDevice), "table");

  // The attention kernel's tensor map: rows of 128 bf16, boxes of 64 x 16, 128-byte swizzle, 256-byte L2 promotion.
  CUtensorMap map{};
  {
    const auto encode = tensorMapEncoder();
    if (!encode) {
      fprintf(stderr, "no cuTensorMapEncodeTiled\n");
      return 1;
    }
    const cuuint64_t dims[2] = {128, static_cast<cuuint64_t>(bytes / 256)};
    const cuuint64_t strides[1] = {256};
    const cuuint32_t box[2] = {64, 16};
    const cuuint32_t elementStrides[2] = {1, 1};
    const CUresult r = encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, pool, dims, strides, box, elementStrides,
                              CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                              CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
      fprintf(stderr, "cuTensorMapEncodeTiled failed: %d\n", static_cast<int>(r));
      return 1;
    }
  }

  int driver = 0;
  cudaDriverGetVersion(&driver);
  const char* commit = getenv("FAIRKV_GIT_COMMIT");
  printf("{\n  \"benchmark\": \"cuda-decode-attention read probe\",\n  \"commit\": \"%s\",\n  \"cudaDriver\": %d,\n",
         commit != nullptr ? commit : "unknown", driver);
  printf("  \"gpu\": \"%s\",\n  \"sms\": %d,\n  \"megabytes\": %lld,\n  \"unitBytes\": %d,\n  \"repeats\": %d,\n",
         prop.name, sms, totalMb, unitBytes, repeats);
  const double copyMs = medianMs([&] { cudaMemcpyAsync(other, pool, bytes, cudaMemcpyDeviceToDevice); }, repeats);
  const double readMs =
      medianMs([&] { readKernel<<<sms * 8, 256>>>(reinterpret_cast<const uint4*>(pool), bytes / 16, sink); }, repeats);
  printf("  \"copyGbPerSecond\": %.1f,\n  \"plainReadGbPerSecond\": %.1f,\n  \"configs\": [\n",
         2.0 * bytes / copyMs / 1e6, bytes / readMs / 1e6);
  fflush(stdout);

  std::vector<Config> configs = {
      // the attention kernel today: a warp per group, 8 per SM, K + V block per 8 KB stage, one in flight
      {"attention-shape tma2d", Ask::Tma2d, 1, 8, 2, 2, true, 0, 0},
      {"attention-shape tma2d + math", Ask::Tma2d, 1, 8, 2, 2, true, 1200, 1},
      {"attention-shape tma2d + less math", Ask::Tma2d, 1, 8, 2, 2, true, 400, 1},
      {"attention-shape touch only", Ask::Tma2d, 1, 8, 2, 2, true, 0, 1},
      {"attention-shape bulk + less math", Ask::Bulk, 1, 8, 2, 2, true, 400, 1},
      {"attention-shape bulk split K/V + less math", Ask::Bulk, 1, 8, 2, 2, true, 400, 1, 1},
      {"attention-shape bulk split K/V + math", Ask::Bulk, 1, 8, 2, 2, true, 1200, 1, 1},
      {"attention-shape bulk split K/V", Ask::Bulk, 1, 8, 2, 2, true, 0, 0, 1},
      {"attention-shape tma2d 2 in flight + less math", Ask::Tma2d, 1, 8, 2, 3, true, 400, 1},
      {"attention-shape tma2d 2 in flight + math", Ask::Tma2d, 1, 8, 2, 3, true, 1200, 1},
      {"attention-shape bulk", Ask::Bulk, 1, 8, 2, 2, true, 0, 0},
      {"attention-shape bulk + math", Ask::Bulk, 1, 8, 2, 2, true, 1200, 1},
      {"attention-shape tma2d ordered", Ask::Tma2d, 1, 8, 2, 2, false, 0, 0},
      {"attention-shape ca", Ask::CpAsyncCa, 1, 8, 2, 2, true, 0, 0},
      {"attention-shape tma2d 2 in flight", Ask::Tma2d, 1, 8, 2, 3, true, 0, 0},
      {"warp 16 KB tiles bulk", Ask::Bulk, 1, 4, 4, 2, true, 0, 0},
      {"warp 16 KB tiles bulk 6/SM", Ask::Bulk, 1, 6, 4, 2, true, 0, 0},
      {"warp 8 KB tiles bulk 12/SM", Ask::Bulk, 1, 12, 2, 2, true, 0, 0},
      {"warp 8 KB tiles bulk 16/SM", Ask::Bulk, 1, 16, 2, 2, true, 0, 0},
      {"warp 4 KB tiles bulk 16/SM", Ask::Bulk, 1, 16, 1, 2, true, 0, 0},
      // the same work per byte spread over more, smaller streams: does the math still slow the stream?
      {"warp 4 KB tiles bulk 16/SM + less math", Ask::Bulk, 1, 16, 1, 2, true, 200, 1},
      {"warp 4 KB tiles bulk 16/SM + math", Ask::Bulk, 1, 16, 1, 2, true, 600, 1},
      {"warp 4 KB tiles bulk 24/SM + less math", Ask::Bulk, 1, 24, 1, 2, true, 200, 1},
      {"warp 8 KB tiles bulk 12/SM + less math", Ask::Bulk, 1, 12, 2, 2, true, 400, 1},
      {"warp 8 KB tiles bulk 16/SM + less math", Ask::Bulk, 1, 16, 2, 2, true, 400, 1},
      // cuDNN's shape: 4 warps share 32 KB tiles, 2 blocks per SM
      {"cudnn-shape cg ordered", Ask::CpAsyncCg, 4, 2, 8, 2, false, 0, 0},
      {"cudnn-shape cg ordered 2 in flight", Ask::CpAsyncCg, 4, 2, 8, 3, false, 0, 0},
      {"cudnn-shape ca ordered 2 in flight", Ask::CpAsyncCa, 4, 2, 8, 3, false, 0, 0},
      {"cudnn-shape cg shuffled 2 in flight", Ask::CpAsyncCg, 4, 2, 8, 3, true, 0, 0},
      {"cudnn-shape bulk ordered 2 in flight", Ask::Bulk, 4, 2, 8, 3, false, 0, 0},
      {"cudnn-shape bulk shuffled 2 in flight", Ask::Bulk, 4, 2, 8, 3, true, 0, 0},
      // cuDNN's shape with the attention's work per byte: each warp's share of a 32 KB tile is 8 KB, so
      // the same busy wait per tile as the attention shape's 8 KB stage (does this shape hide it?)
      {"cudnn-shape cg shuffled 2 in flight + less math", Ask::CpAsyncCg, 4, 2, 8, 3, true, 400, 1},
      {"cudnn-shape cg shuffled 2 in flight + math", Ask::CpAsyncCg, 4, 2, 8, 3, true, 1200, 1},
      {"cudnn-shape cg shuffled + math", Ask::CpAsyncCg, 4, 2, 8, 2, true, 1200, 1},
      {"cudnn-shape cg ordered 2 in flight + math", Ask::CpAsyncCg, 4, 2, 8, 3, false, 1200, 1},
      {"cudnn-shape bulk shuffled 2 in flight + less math", Ask::Bulk, 4, 2, 8, 3, true, 400, 1},
      {"cudnn-shape bulk shuffled 2 in flight + math", Ask::Bulk, 4, 2, 8, 3, true, 1200, 1},
      {"block 4 warps 8 KB tiles bulk shuffled 4 in flight", Ask::Bulk, 4, 2, 2, 5, true, 0, 0},
      // cuDNN's grid at batch 64 (session 22): one block of 4 warps per SM, each reading one long
      // contiguous unit (run with a unit of 16 MiB: one per block)
      {"long cudnn-shape cg ordered 1/SM", Ask::CpAsyncCg, 4, 1, 8, 2, false, 0, 0},
      {"long cudnn-shape cg ordered 1/SM 2 in flight", Ask::CpAsyncCg, 4, 1, 8, 3, false, 0, 0},
      {"long cudnn-shape cg ordered 1/SM 2 in flight + math", Ask::CpAsyncCg, 4, 1, 8, 3, false, 1200, 1},
      {"long cudnn-shape bulk ordered 1/SM 2 in flight", Ask::Bulk, 4, 1, 8, 3, false, 0, 0},
      {"long cudnn-shape cg shuffled 1/SM 2 in flight", Ask::CpAsyncCg, 4, 1, 8, 3, true, 0, 0},
  };
  if (!only.empty()) {
    std::vector<Config> kept;
    for (const Config& config : configs) {
      size_t from = 0;
      while (from <= only.size()) {
        const size_t to = std::min(only.find(',', from), only.size());
        if (to > from && config.name.find(only.substr(from, to - from)) != std::string::npos) {
          kept.push_back(config);
          break;
        }
        from = to + 1;
      }
    }
    configs = kept;
  }
  for (size_t c = 0; c < configs.size(); ++c) {
    const Config& config = configs[c];
    const int tileBytes = blockBytes * config.tileBlocks;
    Params p{};
    p.pool = pool;
    p.table = config.shuffled ? shuffledTable : orderedTable;
    p.blockBytes = blockBytes;
    p.tileBlocks = config.tileBlocks;
    p.unitTiles = unitBytes / tileBytes;
    p.units = static_cast<int>(bytes / unitBytes);
    p.depth = config.depth;
    p.ask = config.ask;
    p.spinCycles = config.spinCycles;
    p.touch = config.touch;
    p.split = config.split;
    p.sink = sink;
    const int smem = config.depth * tileBytes + 128;
    check(cudaFuncSetAttribute(streamKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), "smem attribute");
    const int grid = sms * config.groupsPerSm;
    int fit = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fit, streamKernel, config.warps * 32, smem), "occupancy");
    const double ms =
        medianMs([&] { streamKernel<<<grid, config.warps * 32, smem>>>(map, p); }, repeats);
    const long long read = static_cast<long long>(p.units) * unitBytes;
    printf("    {\"name\": \"%s\", \"ask\": \"%s\", \"warpsPerGroup\": %d, \"groupsPerSm\": %d, \"groupsFit\": %d, "
           "\"tileBytes\": %d, \"tilesInFlight\": %d, \"shuffled\": %s, \"spinCycles\": %d, \"touch\": %d, "
           "\"split\": %d, \"ms\": %.4f, \"gbPerSecond\": %.1f}%s\n",
           config.name.c_str(), askName(config.ask), config.warps, config.groupsPerSm, fit, tileBytes, config.depth - 1,
           config.shuffled ? "true" : "false", config.spinCycles, config.touch, config.split, ms, read / ms / 1e6,
           c + 1 < configs.size() ? "," : "");
    fflush(stdout);
  }
  printf("  ]\n}\n");
  return 0;
}
