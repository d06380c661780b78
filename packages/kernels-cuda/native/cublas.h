// cuBLAS and cuBLASLt loaded at run time (dlopen): only the handful of entry points the matmul needs,
// declared here from cublas_api.h's and cublasLt.h's documented ABI so the addon builds where cuBLAS
// is absent.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

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
/** Loads cuBLASLt once (FAIRKV_CUBLASLT_LIBRARY, then libcublasLt.so.13 / .12 / .so and the toolkit path). */
const CublasStatus& cublasLtStatus();

/** One cuBLASLt algorithm (an opaque `cublasLtMatmulAlgo_t`) and the workspace it asked for. */
struct GemmAlgorithm {
  uint64_t data[8];
  size_t workspaceBytes;
};

/** A cuBLAS handle bound to one device and stream. */
class CublasHandle {
 public:
  CublasHandle(int device, cudaStream_t stream);
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  /** output[r][o] = sum_i input[r][i] * weight[o][i]; f16/bf16 weights take `convertedInput` (rowCount*innerSize of that dtype). */
  void matmul(const MatmulParams& params, void* convertedInput, cudaStream_t stream);

  /** Whether cuBLASLt loaded on this handle, so `algorithms` can list candidates and `matmul` take one. */
  bool hasLt() const { return lt_ != nullptr; }
  /**
   * Up to `limit` cuBLASLt algorithms for this call's GEMM (f16/bf16 weights only), in the order of
   * cuBLASLt's heuristic, each needing at most the handle's workspace (split-K variants included).
   */
  std::vector<GemmAlgorithm> algorithms(const MatmulParams& params, int limit);
  /**
   * The same GEMM through cuBLASLt with `algorithm` (found for this call or for another row count of
   * the same weight). Returns false, having enqueued nothing but the input conversion, when cuBLASLt
   * refuses the algorithm for this shape; the caller then uses the overload above.
   */
  bool matmul(const MatmulParams& params, void* convertedInput, const GemmAlgorithm& algorithm, cudaStream_t stream);

 private:
  /** A GEMM's operand layouts, created once per (rows, inner, outer, dtype) and kept. */
  struct LtLayouts {
    void* weight;
    void* input;
    void* output;
  };
  const LtLayouts& layoutsOf(const MatmulParams& params);
  const void* convertedInputOf(const MatmulParams& params, void* convertedInput, cudaStream_t stream) const;

  void* handle_;
  void* lt_ = nullptr;
  void* ltDescription_ = nullptr;
  void* ltWorkspace_ = nullptr;
  std::map<std::tuple<int, int, int, int>, LtLayouts> ltLayouts_;
};

}  // namespace fairkv
