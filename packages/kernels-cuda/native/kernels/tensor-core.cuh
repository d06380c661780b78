// Tensor-core and asynchronous-copy helpers shared by the mma kernels (ragged decode attention, the
// decode matmul, prefill attention): mma.sync.m16n8k16 for bf16 and f16 with f32 accumulation, hi/lo
// splitting of f32 pairs, mma.sync.m16n8k8 on TF32 with f32 split into hi + lo, ldmatrix, cp.async with
// zero fill, and (Hopper) transaction barriers with bulk tensor copies.
// Fragment layouts follow the PTX ISA.
#pragma once

#include <cuda.h>  // CUtensorMap (the type only: the driver is reached through the runtime)
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <utility>

#include "../common.h"

namespace fairkv {

template <typename T>
struct MmaOps;
template <>
struct MmaOps<__nv_bfloat16> {
  static __device__ __forceinline__ void mma(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  /** Packs (x, y) rounded to bf16, x in the low half; `lo` receives the packed rounding remainders. */
  static __device__ __forceinline__ unsigned split(float x, float y, unsigned& lo) {
    const __nv_bfloat162 hi = __floats2bfloat162_rn(x, y);
    const float2 back = __bfloat1622float2(hi);
    const __nv_bfloat162 rest = __floats2bfloat162_rn(x - back.x, y - back.y);
    lo = *reinterpret_cast<const unsigned*>(&rest);
    return *reinterpret_cast<const unsigned*>(&hi);
  }
};
template <>
struct MmaOps<__half> {
  static __device__ __forceinline__ void mma(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ unsigned split(float x, float y, unsigned& lo) {
    const __half2 hi = __floats2half2_rn(x, y);
    const float2 back = __half22float2(hi);
    const __half2 rest = __floats2half2_rn(x - back.x, y - back.y);
    lo = *reinterpret_cast<const unsigned*>(&rest);
    return *reinterpret_cast<const unsigned*>(&hi);
  }
};

/**
 * x = hi + lo (+ a remainder below 2^-21 |x|): hi is x rounded to TF32 (to nearest, ties away, as
 * cvt.rna.tf32.f32 rounds finite values) by two integer operations, lo the exact f32 remainder, which
 * the tensor cores read as TF32 by dropping its low 13 bits. cvt.rna.tf32.f32 for both parts compiles
 * to a compare-and-select sequence on sm_90 and made the kernel 1.3x slower, at the same error.
 */
__device__ __forceinline__ void splitTf32(float x, unsigned& hi, unsigned& lo) {
  hi = (__float_as_uint(x) + 0x1000u) & 0xffffe000u;
  lo = __float_as_uint(x - __uint_as_float(hi));
}
__device__ __forceinline__ void mmaTf32(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
/** d += a * b at about f32 accuracy: the small products first, then hi * hi. */
__device__ __forceinline__ void mmaSplitTf32(float (&d)[4], const unsigned (&aHi)[4], const unsigned (&aLo)[4],
                                             const unsigned (&bHi)[2], const unsigned (&bLo)[2]) {
  mmaTf32(d, aLo, bHi[0], bHi[1]);
  mmaTf32(d, aHi, bLo[0], bLo[1]);
  mmaTf32(d, aHi, bHi[0], bHi[1]);
}

/** Shared-memory address of a shared pointer, as PTX takes it. */
__device__ __forceinline__ unsigned sharedAddress(const void* shared) {
  return static_cast<unsigned>(__cvta_generic_to_shared(shared));
}

/**
 * 16 bytes global -> shared, bypassing L1, zero-filled when `valid` is false; the L2 prefetches the
 * 256-byte sector group around it (measured on an H100: the decode matmul streams 1-2% faster; it
 * also beat `.ca` by up to 20% on the large 8B shard weights, bench/cuda-matmul).
 */
__device__ __forceinline__ void copyAsync16(void* shared, const void* global, bool valid) {
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;\n" ::"r"(sharedAddress(shared)), "l"(global),
               "r"(valid ? 16 : 0));
}
/**
 * The same through L1 (`.ca`). For the decode attention's per-warp streams of 2 K or V rows per copy,
 * the L1-bypassing form made the L2 send every sector to the SM twice on an H100 (Nsight Compute:
 * 35.0 M L2 sectors read for 17.4 M sectors of data, 13.1 M requests for 1.1 M copies; this form 17.6 M
 * and 4.4 M, as cuDNN's flash kernel), whatever the prefetch hint, lane layout or zero-fill operand:
 * attention calls ran 2-7% faster (bench/cuda-decode-attention/NOTES.md). A prefetch hint changes
 * nothing here.
 */
__device__ __forceinline__ void copyAsync16ThroughL1(void* shared, const void* global, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" ::"r"(sharedAddress(shared)), "l"(global),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void commitAsync() { asm volatile("cp.async.commit_group;\n" ::); }
template <int Pending>
__device__ __forceinline__ void waitAsync() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
}

// Transaction barriers (mbarrier) and bulk tensor copies (TMA): compute capability 9.0+ only. The host
// launches the kernels that use them only there; compiled for older targets they trap.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define FAIRKV_HAS_TMA 1
#else
#define FAIRKV_HAS_TMA 0
#endif

/** Initialises a transaction barrier that completes a phase after `count` arrivals and its bytes. */
__device__ __forceinline__ void barrierInit(unsigned long long* barrier, unsigned count) {
#if FAIRKV_HAS_TMA
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(sharedAddress(barrier)), "r"(count) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#else
  __trap();
#endif
}
/** Arrives on `barrier` and tells it `bytes` more will land (the bulk copies that complete on it). */
__device__ __forceinline__ void barrierArriveExpecting(unsigned long long* barrier, unsigned bytes) {
#if FAIRKV_HAS_TMA
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(sharedAddress(barrier)), "r"(bytes)
               : "memory");
#else
  __trap();
#endif
}
/** Arrives on `barrier` with no bytes to wait for. */
__device__ __forceinline__ void barrierArrive(unsigned long long* barrier) {
#if FAIRKV_HAS_TMA
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(sharedAddress(barrier)) : "memory");
#else
  __trap();
#endif
}
/** Waits until the phase of `barrier` with parity `parity` has completed. */
__device__ __forceinline__ void barrierWait(unsigned long long* barrier, unsigned parity) {
#if FAIRKV_HAS_TMA
  unsigned done = 0;
  do {
    asm volatile(
        "{\n .reg .pred ready;\n mbarrier.try_wait.parity.shared::cta.b64 ready, [%1], %2;\n"
        " selp.u32 %0, 1, 0, ready;\n}\n"
        : "=r"(done)
        : "r"(sharedAddress(barrier)), "r"(parity)
        : "memory");
  } while (done == 0);
#else
  __trap();
#endif
}
/**
 * Bulk tensor copy (TMA) of the 2D box at element (`x`, `y`) of `map` into shared memory (aligned as
 * the map's swizzle needs), completing on `barrier`. `map` must be a __grid_constant__ kernel parameter.
 */
__device__ __forceinline__ void tileLoad2d(void* shared, const CUtensorMap* map, int x, int y,
                                           unsigned long long* barrier) {
#if FAIRKV_HAS_TMA
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::
          "r"(sharedAddress(shared)),
      "l"(reinterpret_cast<unsigned long long>(map)), "r"(x), "r"(y), "r"(sharedAddress(barrier))
      : "memory");
#else
  __trap();
#endif
}

/**
 * The driver's cuTensorMapEncodeTiled, reached through the runtime (the addon does not link the driver
 * library); null where the driver has none. Looked up once.
 */
inline PFN_cuTensorMapEncodeTiled_v12000 tensorMapEncoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = []() -> PFN_cuTensorMapEncodeTiled_v12000 {
    void* entry = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &entry, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      cudaGetLastError();  // not sticky: clear it
      return nullptr;
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(entry);
  }();
  return encode;
}

/**
 * A 2D tensor map over `rows` row-major rows of `rowElements` elements of `dtype` at `base`, in boxes of
 * 128 bytes (64 f16/bf16 elements, 32 f32) by `boxRows` rows with the 128-byte swizzle: the layout the
 * mma kernels' bulk copies bring into shared memory. False where the driver has no
 * cuTensorMapEncodeTiled or refuses the map (`base` must be 16-byte aligned and a row a multiple of 16
 * bytes): the callers then copy element by element.
 */
inline bool swizzledRowsTensorMap(const void* base, DType dtype, long long rowElements, long long rows, int boxRows,
                                  CUtensorMap& map,
                                  CUtensorMapL2promotion promotion = CU_TENSOR_MAP_L2_PROMOTION_L2_256B) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode = tensorMapEncoder();
  if (encode == nullptr) return false;
  const int elementBytes = dtypeBytes(dtype);
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(rowElements), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(rowElements) * elementBytes};  // bytes between rows
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(128 / elementBytes), static_cast<cuuint32_t>(boxRows)};
  const cuuint32_t elementStrides[2] = {1, 1};
  const CUtensorMapDataType type = dtype == DType::F32    ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32
                                   : dtype == DType::BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                                          : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  return encode(&map, type, 2, const_cast<void*>(base), dims, strides, box, elementStrides,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, promotion,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

/** ldmatrix.x4: four 8x8 b16 matrices; lanes 8j..8j+7 address the rows of matrix j, register j holds it. */
__device__ __forceinline__ void loadMatrixX4(unsigned (&r)[4], const void* shared) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(sharedAddress(shared)));
}

/**
 * ldmatrix.x4.trans: as {@link loadMatrixX4}, each matrix transposed (lane 4g + t receives elements
 * (2t, g) and (2t + 1, g) of its rows): a row-major [k][n] tile read as an m16n8k16 B operand.
 */
__device__ __forceinline__ void loadMatrixX4Trans(unsigned (&r)[4], const void* shared) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(sharedAddress(shared)));
}

/** ldmatrix.x2: two 8x8 b16 matrices addressed by lanes 0-15. */
__device__ __forceinline__ void loadMatrixX2(unsigned (&r)[2], const void* shared) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(sharedAddress(shared)));
}

/**
 * Programmatic dependent launch (Hopper+): a kernel launched with programmatic stream serialization
 * may start while the kernel before it still runs; it must call waitForPrerequisiteGrid() before it
 * reads anything that kernel writes. allowDependentLaunch() lets the next such kernel start early.
 * Both are no-ops before compute capability 9.0 (where the launch attribute is not set either).
 */
__device__ __forceinline__ void waitForPrerequisiteGrid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void allowDependentLaunch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" :::);
#endif
}

/** Launches `kernel` on `stream`, as a programmatic dependent launch where the device supports it. */
template <typename... Params, typename... Args>
void launchDependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t sharedBytes, cudaStream_t stream,
                     bool programmatic, Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = sharedBytes;
  config.stream = stream;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = programmatic ? 1 : 0;
  checkCuda(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...), "cudaLaunchKernelEx");
}

}  // namespace fairkv
