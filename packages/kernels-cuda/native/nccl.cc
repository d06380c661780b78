#include "nccl.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <utility>
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
  NcclStatus status{false, "", "", 0, false};
  ncclResult_t (*getVersion)(int*) = nullptr;
  ncclResult_t (*getUniqueId)(ncclUniqueId*) = nullptr;
  ncclResult_t (*commInitAll)(ncclComm_t*, int, const int*) = nullptr;
  ncclResult_t (*commInitRank)(ncclComm_t*, int, ncclUniqueId, int) = nullptr;
  ncclResult_t (*commAbort)(ncclComm_t) = nullptr;  // optional (NCCL >= 2.4)
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
    // Peers connect at ncclCommInitRank (when every rank is known to be alive), not in a rank's first
    // collective: a collective then never waits on the host for a peer, so a rank whose peer failed is
    // never stuck inside an NCCL call, and another thread can abort it (ncclAbortRanks).
    setenv("NCCL_RUNTIME_CONNECT", "0", 0);
    NcclApi loaded;
    loaded.status.abortable = false;
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
    std::string optional;
    loaded.status.abortable = loadSymbol(library, "ncclCommAbort", loaded.commAbort, optional);
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

/**
 * One rank's communicator, shared with the abort registry. Its mutex is held around the rank's own NCCL
 * calls, which return at once (peers are connected at init), so the aborting thread waits at most for
 * one enqueue before it takes the communicator; `aborted` makes the rank's later calls throw.
 */
struct RankSlot {
  std::timed_mutex mutex;
  void* comm = nullptr;
  std::atomic<bool> aborted{false};
  int device = 0;
  std::string key;  // the group's unique id
};

namespace {
std::mutex registryMutex;
std::vector<std::shared_ptr<RankSlot>>& registry() {
  static std::vector<std::shared_ptr<RankSlot>> slots;
  return slots;
}

void unregister(const std::shared_ptr<RankSlot>& slot) {
  std::lock_guard<std::mutex> lock(registryMutex);
  auto& slots = registry();
  slots.erase(std::remove(slots.begin(), slots.end(), slot), slots.end());
}

/** ncclCommAbort of `comm`, made on `device` (NCCL frees its device memory there); this thread's device kept. */
void abortOnDevice(void* comm, int device) {
  int previous = 0;
  const bool restore = cudaGetDevice(&previous) == cudaSuccess;
  cudaSetDevice(device);
  api().commAbort(comm);
  if (restore) cudaSetDevice(previous);
}

[[noreturn]] void throwAborted(const char* what) {
  throw std::runtime_error(std::string(what) + ": the NCCL group was aborted (another device of the group failed)");
}
}  // namespace

int ncclAbortRanks(const std::vector<unsigned char>& uniqueId) {
  const std::string key(uniqueId.begin(), uniqueId.end());
  std::vector<std::shared_ptr<RankSlot>> slots;
  {
    std::lock_guard<std::mutex> lock(registryMutex);
    for (const auto& slot : registry())
      if (slot->key == key) slots.push_back(slot);
  }
  int aborted = 0;
  for (const auto& slot : slots) {
    if (slot->aborted.exchange(true)) continue;
    // From here the rank's own calls throw. It holds its mutex only for an enqueue; should one be stuck
    // there anyway, its communicator is left alone (freeing it under the call would be worse).
    void* comm = nullptr;
    {
      std::unique_lock<std::timed_mutex> lock(slot->mutex, std::defer_lock);
      if (!lock.try_lock_for(std::chrono::seconds(5))) continue;
      std::swap(comm, slot->comm);
    }
    if (comm == nullptr || api().commAbort == nullptr) continue;
    // Not under the rank's mutex: ncclCommAbort may wait until the rank's thread destroyed the CUDA
    // graphs that captured its collectives, and that thread may need the mutex (to throw) first.
    abortOnDevice(comm, slot->device);
    ++aborted;
  }
  return aborted;
}

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
  auto slot = std::make_shared<RankSlot>();
  slot->device = device;
  slot->key.assign(uniqueId.begin(), uniqueId.end());
  checkNccl(nccl.commInitRank(&slot->comm, rankCount, id, rank), "ncclCommInitRank");
  std::lock_guard<std::mutex> lock(registryMutex);
  registry().push_back(slot);
  slot_ = slot;
}

NcclGroup::~NcclGroup() {
  // Not destroyed here: ncclCommDestroy waits for the group's other ranks, so a group still alive when
  // its thread or process exits (never disposed) is left to the driver rather than hang the exit.
  if (slot_) unregister(slot_);
}

void NcclGroup::destroy(bool abort) {
  for (void*& comm : comms_) {
    if (comm != nullptr) api().commDestroy(comm);
    comm = nullptr;
  }
  if (!slot_) return;
  unregister(slot_);
  // an aborted rank's communicator is freed already (or left to the process: see ncclAbortRanks)
  void* comm = nullptr;
  {
    std::lock_guard<std::timed_mutex> lock(slot_->mutex);
    if (!slot_->aborted) std::swap(comm, slot_->comm);
  }
  if (comm == nullptr) return;
  if (abort && api().commAbort != nullptr) abortOnDevice(comm, slot_->device);
  else api().commDestroy(comm);
}

void NcclGroup::allReduceSum(const std::vector<void*>& buffers, const std::vector<cudaStream_t>& streams, size_t count,
                             DType dtype) {
  NcclApi& nccl = requireApi();
  if (buffers.size() != size() || streams.size() != size())
    throw std::invalid_argument("all-reduce needs one buffer and one stream per communicator");
  if (slot_) {
    std::lock_guard<std::timed_mutex> lock(slot_->mutex);
    if (slot_->aborted) throwAborted("ncclAllReduce");
    checkNccl(nccl.allReduce(buffers[0], buffers[0], count, ncclType(dtype), kNcclSum, slot_->comm, streams[0]),
              "ncclAllReduce");
    return;
  }
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
