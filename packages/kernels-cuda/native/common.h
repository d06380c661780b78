// Shared helpers of the fairkv CUDA addon: error checking that turns every failed CUDA call into a
// C++ exception naming the call, the error name and code, and the storage dtype enum shared with
// TypeScript (src/native.ts: StorageDTypeCode).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace fairkv {

/** Storage dtype codes, identical to `StorageDTypeCode` in src/native.ts. */
enum class DType : int { F32 = 0, F16 = 1, BF16 = 2, I32 = 3 };

inline int dtypeBytes(DType dtype) { return (dtype == DType::F16 || dtype == DType::BF16) ? 2 : 4; }

/** A CUDA runtime failure; `code` is the cudaError_t value. */
class CudaError : public std::runtime_error {
 public:
  CudaError(const std::string& message, int code) : std::runtime_error(message), code(code) {}
  int code;
};

inline std::string describeCudaError(cudaError_t error) {
  return std::string(cudaGetErrorName(error)) + " (" + std::to_string(static_cast<int>(error)) + "): " +
         cudaGetErrorString(error);
}

inline void checkCuda(cudaError_t error, const char* what) {
  if (error != cudaSuccess) throw CudaError(std::string(what) + " failed: " + describeCudaError(error), error);
}

/** Checks the last launch error (configuration errors surface here, faults at the next sync). */
inline void checkLaunch(const char* kernel) { checkCuda(cudaGetLastError(), kernel); }

inline unsigned int ceilDiv(long long a, long long b) { return static_cast<unsigned int>((a + b - 1) / b); }

}  // namespace fairkv
