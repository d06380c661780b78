// cuBLAS loaded at run time (dlopen): only the handful of entry points the matmul kernel needs,
// declared here from cublas_api.h's documented ABI so the addon builds where cuBLAS is absent.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "kernels/kernels.h"

namespace fairkv {

struct CublasStatus {
  bool available;
  std::string path;
  std::string error;
  int version;
};

/** Loads cuBLAS once (FAIRKV_CUBLAS_LIBRARY, then libcublas.so.13 / .12 / .so and the toolkit path). */
const CublasStatus& cublasStatus();

/** A cuBLAS handle bound to one device and stream. */
class CublasHandle {
 public:
  CublasHandle(int device, cudaStream_t stream);
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  /** output[r][o] = sum_i input[r][i] * weight[o][i]; f16/bf16 weights take `convertedInput` (rowCount*innerSize of that dtype). */
  void matmul(const MatmulParams& params, void* convertedInput, cudaStream_t stream);
  /**
   * A fused projection split into `outputs` of equal width whose buffers lie one stride apart (gate |
   * up): one strided batched GEMM writes each segment in place, with no GEMM into scratch and no split
   * kernel after it. Returns false, having enqueued nothing, where that does not apply.
   */
  bool matmulEqualSegments(const MatmulParams& params, const MatmulOutputs& outputs, void* convertedInput,
                           cudaStream_t stream);
  /** Whether `matmulEqualSegments` takes these outputs (equal widths, one positive stride apart). */
  static bool takesEqualSegments(const MatmulOutputs& outputs);

 private:
  static const void* convertedInputOf(const MatmulParams& params, void* convertedInput, cudaStream_t stream);
  static constexpr size_t kWorkspaceBytes = 32u << 20;
  void* handle_;
  void* workspace_ = nullptr;
};

}  // namespace fairkv
