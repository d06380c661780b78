// Warpgroup MMA (wgmma, Hopper sm_90a) wrappers for the decode matmul: D[64 x N] += A[64 x 16] B[16 x N]
// with A and B read from shared memory through matrix descriptors (both K-major: A's rows are outputs,
// B's rows are input rows, each 128-byte row holding 64 inner elements in the 128-byte swizzle), f32
// accumulators in registers (N / 2 per thread). Fragment of D (PTX ISA, wgmma .m64nNk16 D layout):
// thread t of the warpgroup, warp w = t / 32, lane l: d[8 j + e] is D[16 w + l / 4 + 8 ((e >> 1) & 1)]
// [16 j + 2 (l % 4) + (e & 1) + 8 (e >> 2)]. Compiled only where __CUDA_ARCH_FEAT_SM90_ALL is defined
// (sm_90a code); elsewhere the wrappers trap and the host never launches a kernel that uses them.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "tensor-core.cuh"

namespace fairkv {

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FAIRKV_HAS_WGMMA 1
#else
#define FAIRKV_HAS_WGMMA 0
#endif

/**
 * Matrix descriptor of a K-major shared-memory tile whose 128-byte rows use the 128-byte swizzle
 * (what a bulk tensor copy with CU_TENSOR_MAP_SWIZZLE_128B writes from a 1 KB-aligned address): start
 * address, leading byte offset 16 (unused by this layout), stride byte offset 1024 (8-row groups),
 * swizzle mode 1 (128 bytes). The k-th 16-element slice of the rows starts 32 k bytes further.
 */
__device__ __forceinline__ unsigned long long wgmmaDescriptor(const void* tile) {
  const unsigned long long address = sharedAddress(tile);
  return ((address & 0x3FFFFull) >> 4) | (1ull << 16) | (64ull << 32) | (1ull << 62);
}

__device__ __forceinline__ void wgmmaFence() {
#if FAIRKV_HAS_WGMMA
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void wgmmaCommit() {
#if FAIRKV_HAS_WGMMA
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void wgmmaWaitAll() {
#if FAIRKV_HAS_WGMMA
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#else
  __trap();
#endif
}
/** Keeps the compiler from moving accesses of `value` across the asynchronous MMAs' fences. */
__device__ __forceinline__ void wgmmaOperandFence(float& value) { asm volatile("" : "+f"(value)::"memory"); }

template <typename T, int N>
struct Wgmma;

// Wgmma<T, N>::mma(d, a, b): d += A B (scale-d 1: d holds zeros before the first call), for bf16 or f16
// operands. PLACEHOLDERS / OPERANDS list the N / 2 accumulator registers; A_B names the descriptors'
// operand numbers.
#if FAIRKV_HAS_WGMMA
#define FAIRKV_WGMMA_ASM(TYPE, N, PLACEHOLDERS, A_B, ...)                                                     \
  asm volatile("wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE "." TYPE " " PLACEHOLDERS ", " A_B \
               ", 1, 1, 1, 0, 0;\n"                                                                       \
               : __VA_ARGS__                                                                               \
               : "l"(a), "l"(b))
#else
#define FAIRKV_WGMMA_ASM(TYPE, N, PLACEHOLDERS, A_B, ...) __trap()
#endif
#define FAIRKV_DEFINE_WGMMA(N, PLACEHOLDERS, A_B, ...)                                                \
  template <typename T>                                                                              \
  struct Wgmma<T, N> {                                                                               \
    static __device__ __forceinline__ void mma(float (&d)[N / 2], unsigned long long a, unsigned long long b) { \
      if constexpr (std::is_same_v<T, __nv_bfloat16>) FAIRKV_WGMMA_ASM("bf16", N, PLACEHOLDERS, A_B, __VA_ARGS__); \
      else FAIRKV_WGMMA_ASM("f16", N, PLACEHOLDERS, A_B, __VA_ARGS__);                                \
    }                                                                                                \
  };

FAIRKV_DEFINE_WGMMA(16, "{%0, %1, %2, %3, %4, %5, %6, %7}", "%8, %9", "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]))
FAIRKV_DEFINE_WGMMA(32, "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}", "%16, %17", "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]))
FAIRKV_DEFINE_WGMMA(64, "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}", "%32, %33", "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]))
FAIRKV_DEFINE_WGMMA(128, "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}", "%64, %65", "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]))

#undef FAIRKV_DEFINE_WGMMA
#undef FAIRKV_WGMMA_ASM

// WgmmaRegisterA<T, N>::mma(d, a, b): d += A B with A, a 64 x 16 tile, in registers (a[4] per thread: the
// mma.sync m16n8k16 A fragment of warp w's rows 16 w..16 w + 15, which is what the D fragment of a wgmma
// gives when its registers 8 j + 0..7 are packed in pairs) and B from shared memory as above.
#if FAIRKV_HAS_WGMMA
#define FAIRKV_WGMMA_REGISTER_A_ASM(TYPE, N, PLACEHOLDERS, A_B, ...)                                             \
  asm volatile("wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE "." TYPE " " PLACEHOLDERS ", " A_B \
               ", 1, 1, 1, 0;\n"                                                                          \
               : __VA_ARGS__                                                                               \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b))
#else
#define FAIRKV_WGMMA_REGISTER_A_ASM(TYPE, N, PLACEHOLDERS, A_B, ...) __trap()
#endif
#define FAIRKV_DEFINE_WGMMA_REGISTER_A(N, PLACEHOLDERS, A_B, ...)                                              \
  template <typename T>                                                                                     \
  struct WgmmaRegisterA<T, N> {                                                                             \
    static __device__ __forceinline__ void mma(float (&d)[N / 2], const unsigned (&a)[4], unsigned long long b) { \
      if constexpr (std::is_same_v<T, __nv_bfloat16>) FAIRKV_WGMMA_REGISTER_A_ASM("bf16", N, PLACEHOLDERS, A_B, __VA_ARGS__); \
      else FAIRKV_WGMMA_REGISTER_A_ASM("f16", N, PLACEHOLDERS, A_B, __VA_ARGS__);                             \
    }                                                                                                       \
  };

template <typename T, int N>
struct WgmmaRegisterA;

FAIRKV_DEFINE_WGMMA_REGISTER_A(64, "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}", "{%32, %33, %34, %35}, %36", "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]))
FAIRKV_DEFINE_WGMMA_REGISTER_A(128, "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}", "{%64, %65, %66, %67}, %68", "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]))

#undef FAIRKV_DEFINE_WGMMA_REGISTER_A
#undef FAIRKV_WGMMA_REGISTER_A_ASM

}  // namespace fairkv
