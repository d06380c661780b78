#include "nccl.h"

#include <cstdlib>
#include <stdexcept>

#include "dynamic-library.h"

namespace fairkv {
namespace {
using ncclResult_t = int;
using ncclComm_t = void*;
struct ncclUniqueId {
  char internal[kNcclUniqueIdBytes];
};
// ncclDataType_t / ncclRedOp_t values from nccl.h.
constexpr int kNcclInt32 = 2, kNcclFloat16 = 6, kNcclFloat32 = 7, kNcclBfloat16 = 9;
constexpr int kNcclSum = 0;

struct NcclApi {
  NcclStatus status{false, "", "", 0};
  ncclResult_t (*getVersion)(int*) = nullptr;
  ncclResult_t (*getUniqueId)(ncclUniqueId*) = nullptr;
  ncclResult_t (*commInitAll)(ncclComm_t*, int, const int*) = nullptr;
  ncclResult_t (*commInitRank)(ncclComm_t*, int, ncclUniqueId, int) = nullptr;
  ncclResult_t (*commDestroy)(ncclComm_t) = nullptr;
  ncclResult_t (*allReduce)(const void*, void*, size_t, int, int, ncclComm_t, cudaStream_t) = nullptr;
  ncclResult_t (*groupStart)() = nullptr;
  ncclResult_t (*groupEnd)() = nullptr;
  const char* (*getErrorString)(ncclResult_t) = nullptr;
};

NcclApi& api() {
  static NcclApi instance = [] {
    // NVLink SHARP (multicast) stays off: it can take a shared host's GPUs out of service.
    setenv("NCCL_NVLS_ENABLE", "0", 0);
    NcclApi loaded;
    std::string error;
    void* library = openFirst("FAIRKV_NCCL_LIBRARY",
                              {"libnccl.so.2", "libnccl.so", "/usr/lib/x86_64-linux-gnu/libnccl.so.2"},
                              loaded.status.path, error);
    if (library == nullptr) {
      loaded.status.error = "NCCL not found: " + error;
      return loaded;
    }
    if (!loadSymbol(library, "ncclGetVersion", loaded.getVersion, error) ||
        !loadSymbol(library, "ncclGetUniqueId", loaded.getUniqueId, error) ||
        !loadSymbol(library, "ncclCommInitAll", loaded.commInitAll, error) ||
        !loadSymbol(library, "ncclCommInitRank", loaded.commInitRank, error) ||
        !loadSymbol(library, "ncclCommDestroy", loaded.commDestroy, error) ||
        !loadSymbol(library, "ncclAllReduce", loaded.allReduce, error) ||
        !loadSymbol(library, "ncclGroupStart", loaded.groupStart, error) ||
        !loadSymbol(library, "ncclGroupEnd", loaded.groupEnd, error) ||
        !loadSymbol(library, "ncclGetErrorString", loaded.getErrorString, error)) {
      loaded.status.error = "NCCL at " + loaded.status.path + " is unusable: " + error;
      return loaded;
    }
    loaded.getVersion(&loaded.status.version);
    loaded.status.available = true;
    return loaded;
  }();
  return instance;
}

NcclApi& requireApi() {
  NcclApi& nccl = api();
  if (!nccl.status.available) throw std::runtime_error(nccl.status.error);
  return nccl;
}

void checkNccl(ncclResult_t result, const char* what) {
  if (result != 0)
    throw std::runtime_error(std::string(what) + " failed: " + api().getErrorString(result) + " (" +
                             std::to_string(result) + ")");
}

int ncclType(DType dtype) {
  switch (dtype) {
    case DType::F32: return kNcclFloat32;
    case DType::F16: return kNcclFloat16;
    case DType::BF16: return kNcclBfloat16;
    case DType::I32: return kNcclInt32;
  }
  return kNcclFloat32;
}
}  // namespace

const NcclStatus& ncclStatus() { return api().status; }

std::vector<unsigned char> ncclGetUniqueIdBytes() {
  ncclUniqueId id{};
  checkNccl(requireApi().getUniqueId(&id), "ncclGetUniqueId");
  return std::vector<unsigned char>(id.internal, id.internal + kNcclUniqueIdBytes);
}

NcclGroup::NcclGroup(const std::vector<int>& devices) {
  NcclApi& nccl = requireApi();
  comms_.assign(devices.size(), nullptr);
  checkNccl(nccl.commInitAll(comms_.data(), static_cast<int>(devices.size()), devices.data()), "ncclCommInitAll");
}

NcclGroup::NcclGroup(const std::vector<unsigned char>& uniqueId, int rankCount, int rank, int device) {
  NcclApi& nccl = requireApi();
  if (uniqueId.size() != kNcclUniqueIdBytes) throw std::invalid_argument("ncclUniqueId must be 128 bytes");
  ncclUniqueId id{};
  for (int i = 0; i < kNcclUniqueIdBytes; ++i) id.internal[i] = static_cast<char>(uniqueId[i]);
  checkCuda(cudaSetDevice(device), "cudaSetDevice");
  comms_.assign(1, nullptr);
  checkNccl(nccl.commInitRank(&comms_[0], rankCount, id, rank), "ncclCommInitRank");
}

NcclGroup::~NcclGroup() {
  for (void* comm : comms_)
    if (comm != nullptr) api().commDestroy(comm);
}

void NcclGroup::allReduceSum(const std::vector<void*>& buffers, const std::vector<cudaStream_t>& streams, size_t count,
                             DType dtype) {
  NcclApi& nccl = requireApi();
  if (buffers.size() != comms_.size() || streams.size() != comms_.size())
    throw std::invalid_argument("all-reduce needs one buffer and one stream per communicator");
  checkNccl(nccl.groupStart(), "ncclGroupStart");
  for (size_t i = 0; i < comms_.size(); ++i) {
    const ncclResult_t result =
        nccl.allReduce(buffers[i], buffers[i], count, ncclType(dtype), kNcclSum, comms_[i], streams[i]);
    if (result != 0) {
      nccl.groupEnd();
      checkNccl(result, "ncclAllReduce");
    }
  }
  checkNccl(nccl.groupEnd(), "ncclGroupEnd");
}

}  // namespace fairkv
