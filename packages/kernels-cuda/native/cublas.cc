#include "cublas.h"

#include <stdexcept>

#include "dynamic-library.h"

namespace fairkv {
namespace {
// From cublas_api.h / library_types.h (CUDA 12 and 13 share these values).
using cublasStatus_t = int;
using cublasHandle_t = void*;
constexpr int kOpN = 0, kOpT = 1;
constexpr int kR32F = 0, kR16F = 2, kR16BF = 14;
constexpr int kCompute32F = 68;
constexpr int kGemmDefault = -1;

struct CublasApi {
  CublasStatus status{false, "", "", 0};
  cublasStatus_t (*create)(cublasHandle_t*) = nullptr;
  cublasStatus_t (*destroy)(cublasHandle_t) = nullptr;
  cublasStatus_t (*setStream)(cublasHandle_t, cudaStream_t) = nullptr;
  cublasStatus_t (*getVersion)(cublasHandle_t, int*) = nullptr;
  /** Optional: where present, each handle gets its own workspace (what lets cuBLAS run inside CUDA graphs as outside). */
  cublasStatus_t (*setWorkspace)(cublasHandle_t, void*, size_t) = nullptr;
  cublasStatus_t (*gemmEx)(cublasHandle_t, int, int, int, int, int, const void*, const void*, int, int, const void*,
                           int, int, const void*, void*, int, int, int, int) = nullptr;
  /** Optional (null where the library lacks it): split projections then take the GEMM + split path. */
  cublasStatus_t (*gemmStridedBatchedEx)(cublasHandle_t, int, int, int, int, int, const void*, const void*, int, int,
                                         long long, const void*, int, int, long long, const void*, void*, int, int,
                                         long long, int, int, int) = nullptr;
};

CublasApi& api() {
  static CublasApi instance = [] {
    CublasApi loaded;
    std::string error;
    void* library = openFirst("FAIRKV_CUBLAS_LIBRARY",
                              {"libcublas.so.13", "libcublas.so.12", "libcublas.so", "/usr/local/cuda/lib64/libcublas.so.13",
                               "/usr/local/cuda/lib64/libcublas.so.12", "/usr/local/cuda/lib64/libcublas.so"},
                              loaded.status.path, error);
    if (library == nullptr) {
      loaded.status.error = "cuBLAS not found: " + error;
      return loaded;
    }
    if (!loadSymbol(library, "cublasCreate_v2", loaded.create, error) ||
        !loadSymbol(library, "cublasDestroy_v2", loaded.destroy, error) ||
        !loadSymbol(library, "cublasSetStream_v2", loaded.setStream, error) ||
        !loadSymbol(library, "cublasGetVersion_v2", loaded.getVersion, error) ||
        !loadSymbol(library, "cublasGemmEx", loaded.gemmEx, error)) {
      loaded.status.error = "cuBLAS at " + loaded.status.path + " is unusable: " + error;
      return loaded;
    }
    std::string optional;
    if (!loadSymbol(library, "cublasGemmStridedBatchedEx", loaded.gemmStridedBatchedEx, optional))
      loaded.gemmStridedBatchedEx = nullptr;
    if (!loadSymbol(library, "cublasSetWorkspace_v2", loaded.setWorkspace, optional)) loaded.setWorkspace = nullptr;
    loaded.status.available = true;
    return loaded;
  }();
  return instance;
}

void checkCublas(cublasStatus_t status, const char* what) {
  if (status != 0) throw std::runtime_error(std::string(what) + " failed with cublasStatus_t " + std::to_string(status));
}
}  // namespace

const CublasStatus& cublasStatus() { return api().status; }

CublasHandle::CublasHandle(int device, cudaStream_t stream) : handle_(nullptr) {
  CublasApi& cublas = api();
  if (!cublas.status.available) throw std::runtime_error(cublas.status.error);
  checkCuda(cudaSetDevice(device), "cudaSetDevice");
  checkCublas(cublas.create(&handle_), "cublasCreate");
  checkCublas(cublas.setStream(handle_, stream), "cublasSetStream");
  if (cublas.status.version == 0) cublas.getVersion(handle_, &cublas.status.version);
  // A workspace of its own (32 MiB, cuBLAS's recommendation for Hopper): cuBLAS cannot allocate one
  // while a stream is being captured into a graph, and would otherwise pick other kernels there.
  // Where either step fails, cuBLAS keeps its default workspace.
  if (cublas.setWorkspace != nullptr && cudaMalloc(&workspace_, kWorkspaceBytes) == cudaSuccess &&
      cublas.setWorkspace(handle_, workspace_, kWorkspaceBytes) != 0) {
    cudaFree(workspace_);
    workspace_ = nullptr;
  }
  cudaGetLastError();
}

CublasHandle::~CublasHandle() {
  if (handle_ != nullptr) api().destroy(handle_);
  if (workspace_ != nullptr) cudaFree(workspace_);
}

namespace {
int cudaTypeOf(DType dtype) { return dtype == DType::F32 ? kR32F : dtype == DType::F16 ? kR16F : kR16BF; }
}  // namespace

const void* CublasHandle::convertedInputOf(const MatmulParams& p, void* convertedInput, cudaStream_t stream) {
  if (p.weightDType == DType::F32) return p.input;
  convertFloatTo(p.input, convertedInput, p.weightDType, static_cast<long long>(p.rowCount) * p.innerSize, stream);
  return convertedInput;
}

void CublasHandle::matmul(const MatmulParams& p, void* convertedInput, cudaStream_t stream) {
#ifdef FAIRKV_PROBE_ONLY
  (void)p, (void)convertedInput, (void)stream;
  throw std::runtime_error("probe-only build: no matmul");
#else
  // Row-major output[rows][outer] is column-major outer x rows: C = op(W) * X^T with W^T stored.
  const float one = 1.f, zero = 0.f;
  const int type = cudaTypeOf(p.weightDType);
  const void* input = convertedInputOf(p, convertedInput, stream);
  checkCublas(api().gemmEx(handle_, kOpT, kOpN, p.outerSize, p.rowCount, p.innerSize, &one, p.weight, type, p.innerSize,
                           input, type, p.innerSize, &zero, p.output, kR32F, p.outerSize, kCompute32F, kGemmDefault),
              "cublasGemmEx");
#endif
}

bool CublasHandle::takesEqualSegments(const MatmulOutputs& outputs) {
  if (api().gemmStridedBatchedEx == nullptr || outputs.count < 2) return false;
  const long long stride = outputs.data[1] - outputs.data[0];
  if (stride <= 0) return false;
  for (int s = 1; s < outputs.count; ++s)
    if (outputs.widths[s] != outputs.widths[0] || outputs.data[s] - outputs.data[s - 1] != stride) return false;
  return true;
}

bool CublasHandle::matmulEqualSegments(const MatmulParams& p, const MatmulOutputs& outputs, void* convertedInput,
                                       cudaStream_t stream) {
#ifdef FAIRKV_PROBE_ONLY
  (void)p, (void)outputs, (void)convertedInput, (void)stream;
  throw std::runtime_error("probe-only build: no matmul");
#else
  if (!takesEqualSegments(outputs)) return false;
  const int width = outputs.widths[0];
  const long long stride = outputs.data[1] - outputs.data[0];
  // batch s: weight rows [s * width, (s + 1) * width) into outputs.data[s]; every batch reads the same input
  const float one = 1.f, zero = 0.f;
  const int type = cudaTypeOf(p.weightDType);
  const void* input = convertedInputOf(p, convertedInput, stream);
  checkCublas(api().gemmStridedBatchedEx(handle_, kOpT, kOpN, width, p.rowCount, p.innerSize, &one, p.weight, type,
                                         p.innerSize, static_cast<long long>(width) * p.innerSize, input, type,
                                         p.innerSize, 0, &zero, outputs.data[0], kR32F, width, stride, outputs.count,
                                         kCompute32F, kGemmDefault),
              "cublasGemmStridedBatchedEx");
  return true;
#endif
}

}  // namespace fairkv
