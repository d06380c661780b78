// top-p-sample: nucleus sampling (Holtzman et al. 2020), deterministic given a seed, following the
// exact recipe of TopPSampleArgs in packages/kernels/src/kernel-args.ts: probabilities in float64,
// a stable segmented radix sort (descending probability, ties by lower index), the shortest prefix
// reaching top-p, and the first token whose cumulative mass exceeds u * mass.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

#include "../common.h"
#include "kernels.h"
#include "sampling.cuh"

namespace fairkv {
namespace {
constexpr int kThreads = 256;

struct MaxOf {
  template <typename T>
  __device__ __forceinline__ T operator()(const T& a, const T& b) const { return a < b ? b : a; }
};
struct MinOf {
  template <typename T>
  __device__ __forceinline__ T operator()(const T& a, const T& b) const { return b < a ? b : a; }
};

struct Workspace {
  double* probabilities;
  double* sortedProbabilities;
  int* indices;
  int* sortedIndices;
  int* offsets;
  void* sortTemp;
  size_t sortTempBytes;
};

size_t align256(size_t bytes) { return (bytes + 255) / 256 * 256; }

Workspace layout(void* base, int rowCount, int vocabSize, size_t sortTempBytes) {
  const size_t elements = static_cast<size_t>(rowCount) * vocabSize;
  unsigned char* cursor = static_cast<unsigned char*>(base);
  Workspace w{};
  w.probabilities = reinterpret_cast<double*>(cursor);
  cursor += align256(elements * sizeof(double));
  w.sortedProbabilities = reinterpret_cast<double*>(cursor);
  cursor += align256(elements * sizeof(double));
  w.indices = reinterpret_cast<int*>(cursor);
  cursor += align256(elements * sizeof(int));
  w.sortedIndices = reinterpret_cast<int*>(cursor);
  cursor += align256(elements * sizeof(int));
  w.offsets = reinterpret_cast<int*>(cursor);
  cursor += align256((static_cast<size_t>(rowCount) + 1) * sizeof(int));
  w.sortTemp = cursor;
  w.sortTempBytes = sortTempBytes;
  return w;
}

size_t sortTempBytesFor(int rowCount, int vocabSize) {
  size_t bytes = 0;
  const int items = rowCount * vocabSize;
  checkCuda(cub::DeviceSegmentedRadixSort::SortPairsDescending(
                nullptr, bytes, static_cast<const double*>(nullptr), static_cast<double*>(nullptr),
                static_cast<const int*>(nullptr), static_cast<int*>(nullptr), items, rowCount,
                static_cast<const int*>(nullptr), static_cast<const int*>(nullptr)),
            "cub::DeviceSegmentedRadixSort (size query)");
  return bytes;
}

__global__ void probabilitiesKernel(const float* __restrict__ logits, const float* __restrict__ temperatures,
                                    int vocabSize, int rowCount, Workspace w) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  __shared__ double sMax, sSum;
  const int row = blockIdx.x;
  const float* rowLogits = logits + static_cast<long long>(row) * vocabSize;
  const long long base = static_cast<long long>(row) * vocabSize;
  if (threadIdx.x == 0) {
    w.offsets[row] = static_cast<int>(base);
    if (row == rowCount - 1) w.offsets[rowCount] = static_cast<int>(base + vocabSize);
  }
  const float temperature = temperatures[row];
  if (!(temperature > 0.f)) {  // greedy rows: the final kernel takes the argmax; keep the sort well-defined
    for (int v = threadIdx.x; v < vocabSize; v += kThreads) {
      w.probabilities[base + v] = 0.0;
      w.indices[base + v] = v;
    }
    return;
  }
  double localMax = -INFINITY;
  for (int v = threadIdx.x; v < vocabSize; v += kThreads)
    localMax = fmax(localMax, static_cast<double>(rowLogits[v]) / temperature);
  const double maximum = Reduce(temp).Reduce(localMax, MaxOf());
  if (threadIdx.x == 0) sMax = maximum;
  __syncthreads();
  double localSum = 0.0;
  for (int v = threadIdx.x; v < vocabSize; v += kThreads) {
    const double e = exp(static_cast<double>(rowLogits[v]) / temperature - sMax);
    w.probabilities[base + v] = e;
    w.indices[base + v] = v;
    localSum += e;
  }
  __syncthreads();
  const double sum = Reduce(temp).Sum(localSum);
  if (threadIdx.x == 0) sSum = sum;
  __syncthreads();
  for (int v = threadIdx.x; v < vocabSize; v += kThreads) w.probabilities[base + v] /= sSum;
}

/** First position in the sorted row where the running sum satisfies `exceeds(cumulative)`, or -1. */
template <typename Predicate>
__device__ int firstPosition(const double* __restrict__ sorted, int count, Predicate exceeds, double* massAt) {
  using Scan = cub::BlockScan<double, kThreads>;
  using ReduceInt = cub::BlockReduce<int, kThreads>;
  __shared__ typename Scan::TempStorage scanTemp;
  __shared__ typename ReduceInt::TempStorage reduceTemp;
  __shared__ double sCarry;
  __shared__ int sFound;
  __shared__ int sFirst;
  __shared__ double sMassAt;
  if (threadIdx.x == 0) {
    sCarry = 0.0;
    sFound = -1;
  }
  __syncthreads();
  for (int tile = 0; tile < count; tile += kThreads) {
    const int position = tile + threadIdx.x;
    const double value = position < count ? sorted[position] : 0.0;
    double inclusive = 0.0;
    double tileTotal = 0.0;
    Scan(scanTemp).InclusiveSum(value, inclusive, tileTotal);
    const double cumulative = sCarry + inclusive;
    const int candidate = (position < count && exceeds(cumulative)) ? position : 0x7fffffff;
    const int first = ReduceInt(reduceTemp).Reduce(candidate, MinOf());
    if (threadIdx.x == 0) sFirst = first;
    __syncthreads();
    const int firstInBlock = sFirst;
    if (position == firstInBlock) sMassAt = cumulative;
    if (threadIdx.x == 0) {
      if (firstInBlock != 0x7fffffff) sFound = firstInBlock;
      sCarry += tileTotal;
    }
    __syncthreads();
    if (sFound >= 0) break;
  }
  __syncthreads();
  if (massAt != nullptr) *massAt = sMassAt;
  return sFound;
}

__global__ void sampleKernel(const float* __restrict__ logits, const float* __restrict__ temperatures,
                             const float* __restrict__ topPs, const int* __restrict__ seeds, int* __restrict__ output,
                             int vocabSize, Workspace w) {
  const int row = blockIdx.x;
  const float temperature = temperatures[row];
  if (!(temperature > 0.f)) {
    const int index = blockArgmax<kThreads>(logits + static_cast<long long>(row) * vocabSize, vocabSize);
    if (threadIdx.x == 0) output[row] = index;
    return;
  }
  const long long base = static_cast<long long>(row) * vocabSize;
  const double* sorted = w.sortedProbabilities + base;
  const double topP = topPs[row];
  double mass = 0.0;
  int nucleusEnd = firstPosition(sorted, vocabSize, [topP](double c) { return c >= topP; }, &mass);
  if (nucleusEnd < 0) {  // rounding never reached top-p: the whole vocabulary
    nucleusEnd = vocabSize - 1;
    mass = 0.0;
    for (int v = 0; v < vocabSize; ++v) mass += sorted[v];  // every thread, identical result
  }
  const double u = static_cast<double>(pcgHash(static_cast<unsigned int>(seeds[row])) >> 8) / 16777216.0;
  const double target = u * mass;
  int chosen = firstPosition(sorted, nucleusEnd + 1, [target](double c) { return c > target; }, nullptr);
  if (chosen < 0) chosen = nucleusEnd;
  if (threadIdx.x == 0) output[row] = w.sortedIndices[base + chosen];
}
}  // namespace

size_t topPSampleWorkspaceBytes(int rowCount, int vocabSize) {
  const size_t elements = static_cast<size_t>(rowCount) * vocabSize;
  return align256(elements * sizeof(double)) * 2 + align256(elements * sizeof(int)) * 2 +
         align256((static_cast<size_t>(rowCount) + 1) * sizeof(int)) + sortTempBytesFor(rowCount, vocabSize);
}

void topPSample(const TopPSampleParams& params, void* workspace, size_t workspaceBytes, cudaStream_t stream) {
  if (params.rowCount <= 0) return;
  const size_t sortBytes = sortTempBytesFor(params.rowCount, params.vocabSize);
  if (workspaceBytes < topPSampleWorkspaceBytes(params.rowCount, params.vocabSize))
    throw std::invalid_argument("top-p-sample: workspace too small");
  Workspace w = layout(workspace, params.rowCount, params.vocabSize, sortBytes);
  probabilitiesKernel<<<params.rowCount, kThreads, 0, stream>>>(params.logits, params.temperatures, params.vocabSize,
                                                                params.rowCount, w);
  checkLaunch("top-p-sample probabilities kernel");
  size_t tempBytes = w.sortTempBytes;
  checkCuda(cub::DeviceSegmentedRadixSort::SortPairsDescending(
                w.sortTemp, tempBytes, w.probabilities, w.sortedProbabilities, w.indices, w.sortedIndices,
                params.rowCount * params.vocabSize, params.rowCount, w.offsets, w.offsets + 1, 0,
                static_cast<int>(sizeof(double) * 8), stream),
            "cub::DeviceSegmentedRadixSort::SortPairsDescending");
  sampleKernel<<<params.rowCount, kThreads, 0, stream>>>(params.logits, params.temperatures, params.topPs, params.seeds,
                                                         params.output, params.vocabSize, w);
  checkLaunch("top-p-sample kernel");
}
}  // namespace fairkv
