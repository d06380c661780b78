#include "cublas.h"

#include <cstring>
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
  cublasStatus_t (*gemmEx)(cublasHandle_t, int, int, int, int, int, const void*, const void*, int, int, const void*,
                           int, int, const void*, void*, int, int, int, int) = nullptr;
};

// From cublasLt.h (CUDA 12 and 13 share these values and layouts).
using cublasLtHandle_t = void*;
constexpr int kLtDescComputeType = 0, kLtDescTransA = 3, kLtDescTransB = 4;
constexpr int kLtPreferenceMaxWorkspaceBytes = 1;
struct LtHeuristicResult {
  uint64_t algo[8];
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
};
/** Workspace each handle gives cuBLASLt (split-K partial sums); what PyTorch gives it on Hopper. */
constexpr size_t kLtWorkspaceBytes = 32u << 20;

struct CublasLtApi {
  CublasStatus status{false, "", "", 0};
  cublasStatus_t (*create)(cublasLtHandle_t*) = nullptr;
  cublasStatus_t (*destroy)(cublasLtHandle_t) = nullptr;
  size_t (*getVersion)() = nullptr;
  cublasStatus_t (*descCreate)(void**, int, int) = nullptr;
  cublasStatus_t (*descSetAttribute)(void*, int, const void*, size_t) = nullptr;
  cublasStatus_t (*descDestroy)(void*) = nullptr;
  cublasStatus_t (*layoutCreate)(void**, int, uint64_t, uint64_t, int64_t) = nullptr;
  cublasStatus_t (*layoutDestroy)(void*) = nullptr;
  cublasStatus_t (*preferenceCreate)(void**) = nullptr;
  cublasStatus_t (*preferenceSetAttribute)(void*, int, const void*, size_t) = nullptr;
  cublasStatus_t (*preferenceDestroy)(void*) = nullptr;
  cublasStatus_t (*heuristic)(cublasLtHandle_t, void*, void*, void*, void*, void*, void*, int, LtHeuristicResult*,
                              int*) = nullptr;
  cublasStatus_t (*matmul)(cublasLtHandle_t, void*, const void*, const void*, void*, const void*, void*, const void*,
                           const void*, void*, void*, void*, const void*, void*, size_t, cudaStream_t) = nullptr;
};

CublasLtApi& ltApi() {
  static CublasLtApi instance = [] {
    CublasLtApi loaded;
    std::string error;
    void* library = openFirst("FAIRKV_CUBLASLT_LIBRARY",
                              {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so",
                               "/usr/local/cuda/lib64/libcublasLt.so.13", "/usr/local/cuda/lib64/libcublasLt.so.12",
                               "/usr/local/cuda/lib64/libcublasLt.so"},
                              loaded.status.path, error);
    if (library == nullptr) {
      loaded.status.error = "cuBLASLt not found: " + error;
      return loaded;
    }
    if (!loadSymbol(library, "cublasLtCreate", loaded.create, error) ||
        !loadSymbol(library, "cublasLtDestroy", loaded.destroy, error) ||
        !loadSymbol(library, "cublasLtGetVersion", loaded.getVersion, error) ||
        !loadSymbol(library, "cublasLtMatmulDescCreate", loaded.descCreate, error) ||
        !loadSymbol(library, "cublasLtMatmulDescSetAttribute", loaded.descSetAttribute, error) ||
        !loadSymbol(library, "cublasLtMatmulDescDestroy", loaded.descDestroy, error) ||
        !loadSymbol(library, "cublasLtMatrixLayoutCreate", loaded.layoutCreate, error) ||
        !loadSymbol(library, "cublasLtMatrixLayoutDestroy", loaded.layoutDestroy, error) ||
        !loadSymbol(library, "cublasLtMatmulPreferenceCreate", loaded.preferenceCreate, error) ||
        !loadSymbol(library, "cublasLtMatmulPreferenceSetAttribute", loaded.preferenceSetAttribute, error) ||
        !loadSymbol(library, "cublasLtMatmulPreferenceDestroy", loaded.preferenceDestroy, error) ||
        !loadSymbol(library, "cublasLtMatmulAlgoGetHeuristic", loaded.heuristic, error) ||
        !loadSymbol(library, "cublasLtMatmul", loaded.matmul, error)) {
      loaded.status.error = "cuBLASLt at " + loaded.status.path + " is unusable: " + error;
      return loaded;
    }
    loaded.status.version = static_cast<int>(loaded.getVersion());
    loaded.status.available = true;
    return loaded;
  }();
  return instance;
}

int cudaTypeOf(DType dtype) {
  return dtype == DType::F32 ? kR32F : dtype == DType::F16 ? kR16F : kR16BF;
}

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
const CublasStatus& cublasLtStatus() { return ltApi().status; }

CublasHandle::CublasHandle(int device, cudaStream_t stream) : handle_(nullptr) {
  CublasApi& cublas = api();
  if (!cublas.status.available) throw std::runtime_error(cublas.status.error);
  checkCuda(cudaSetDevice(device), "cudaSetDevice");
  checkCublas(cublas.create(&handle_), "cublasCreate");
  checkCublas(cublas.setStream(handle_, stream), "cublasSetStream");
  if (cublas.status.version == 0) cublas.getVersion(handle_, &cublas.status.version);
  // cuBLASLt is optional: without it the matmul has cublasGemmEx's own choice of kernel only.
  CublasLtApi& lt = ltApi();
  if (!lt.status.available) return;
  void* ltHandle = nullptr;
  void* description = nullptr;
  if (lt.create(&ltHandle) != 0) return;
  const int opT = kOpT, opN = kOpN, compute = kCompute32F;
  if (lt.descCreate(&description, kCompute32F, kR32F) != 0 ||
      lt.descSetAttribute(description, kLtDescComputeType, &compute, sizeof compute) != 0 ||
      lt.descSetAttribute(description, kLtDescTransA, &opT, sizeof opT) != 0 ||
      lt.descSetAttribute(description, kLtDescTransB, &opN, sizeof opN) != 0 ||
      cudaMalloc(&ltWorkspace_, kLtWorkspaceBytes) != cudaSuccess) {
    cudaGetLastError();  // a refused allocation must not surface at the next launch check
    if (description != nullptr) lt.descDestroy(description);
    lt.destroy(ltHandle);
    ltWorkspace_ = nullptr;
    return;
  }
  lt_ = ltHandle;
  ltDescription_ = description;
}

CublasHandle::~CublasHandle() {
  if (lt_ != nullptr) {
    CublasLtApi& lt = ltApi();
    for (auto& [key, layouts] : ltLayouts_) {
      lt.layoutDestroy(layouts.weight);
      lt.layoutDestroy(layouts.input);
      lt.layoutDestroy(layouts.output);
    }
    lt.descDestroy(ltDescription_);
    lt.destroy(lt_);
    cudaFree(ltWorkspace_);
  }
  if (handle_ != nullptr) api().destroy(handle_);
}

const void* CublasHandle::convertedInputOf(const MatmulParams& p, void* convertedInput, cudaStream_t stream) const {
  if (p.weightDType == DType::F32) return p.input;
  convertFloatTo(p.input, convertedInput, p.weightDType, static_cast<long long>(p.rowCount) * p.innerSize, stream);
  return convertedInput;
}

const CublasHandle::LtLayouts& CublasHandle::layoutsOf(const MatmulParams& p) {
  const auto key = std::make_tuple(p.rowCount, p.innerSize, p.outerSize, static_cast<int>(p.weightDType));
  auto found = ltLayouts_.find(key);
  if (found != ltLayouts_.end()) return found->second;
  // Column-major, as cublasGemmEx below: W^T stored (inner x outer), X^T (inner x rows), output outer x rows.
  CublasLtApi& lt = ltApi();
  const int type = cudaTypeOf(p.weightDType);
  LtLayouts layouts{nullptr, nullptr, nullptr};
  checkCublas(lt.layoutCreate(&layouts.weight, type, p.innerSize, p.outerSize, p.innerSize), "cublasLtMatrixLayoutCreate");
  checkCublas(lt.layoutCreate(&layouts.input, type, p.innerSize, p.rowCount, p.innerSize), "cublasLtMatrixLayoutCreate");
  checkCublas(lt.layoutCreate(&layouts.output, kR32F, p.outerSize, p.rowCount, p.outerSize), "cublasLtMatrixLayoutCreate");
  return ltLayouts_.emplace(key, layouts).first->second;
}

std::vector<GemmAlgorithm> CublasHandle::algorithms(const MatmulParams& p, int limit) {
  std::vector<GemmAlgorithm> found;
  if (lt_ == nullptr || p.weightDType == DType::F32 || limit <= 0) return found;
  CublasLtApi& lt = ltApi();
  const LtLayouts& layouts = layoutsOf(p);
  void* preference = nullptr;
  checkCublas(lt.preferenceCreate(&preference), "cublasLtMatmulPreferenceCreate");
  const uint64_t workspaceBytes = kLtWorkspaceBytes;
  std::vector<LtHeuristicResult> results(static_cast<size_t>(limit));
  int count = 0;
  const cublasStatus_t status =
      lt.preferenceSetAttribute(preference, kLtPreferenceMaxWorkspaceBytes, &workspaceBytes, sizeof workspaceBytes) != 0
          ? 1
          : lt.heuristic(lt_, ltDescription_, layouts.weight, layouts.input, layouts.output, layouts.output, preference,
                         limit, results.data(), &count);
  lt.preferenceDestroy(preference);
  if (status != 0) return found;  // no candidates: the caller keeps cublasGemmEx
  for (int i = 0; i < count; ++i) {
    if (results[i].state != 0 || results[i].workspaceSize > kLtWorkspaceBytes) continue;
    GemmAlgorithm algorithm{};
    std::memcpy(algorithm.data, results[i].algo, sizeof algorithm.data);
    algorithm.workspaceBytes = results[i].workspaceSize;
    found.push_back(algorithm);
  }
  return found;
}

bool CublasHandle::matmul(const MatmulParams& p, void* convertedInput, const GemmAlgorithm& algorithm,
                          cudaStream_t stream) {
#ifdef FAIRKV_PROBE_ONLY
  (void)p, (void)convertedInput, (void)algorithm, (void)stream;
  throw std::runtime_error("probe-only build: no matmul");
#else
  if (lt_ == nullptr || p.weightDType == DType::F32) return false;
  const LtLayouts& layouts = layoutsOf(p);
  const void* input = convertedInputOf(p, convertedInput, stream);
  const float one = 1.f, zero = 0.f;
  return ltApi().matmul(lt_, ltDescription_, &one, p.weight, layouts.weight, input, layouts.input, &zero, p.output,
                        layouts.output, p.output, layouts.output, algorithm.data, ltWorkspace_, kLtWorkspaceBytes,
                        stream) == 0;
#endif
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

}  // namespace fairkv
