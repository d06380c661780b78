// NCCL loaded at run time (dlopen): nccl.h is absent where the addon is usually built, so the few
// entry points used are declared here from NCCL's documented ABI (nccl.h, NCCL 2.x). One process
// drives all local GPUs: ncclCommInitAll gives one communicator per device, each used on that
// device's stream. A rank per thread or process uses ncclGetUniqueId + ncclCommInitRank; another
// thread can abort the ranks of a group (ncclAbortRanks) when one of its devices failed.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace fairkv {

struct NcclStatus {
  bool available;
  std::string path;
  std::string error;
  int version;
  /** Whether the library has ncclCommAbort (ncclAbortRanks can abort ranks from another thread). */
  bool abortable;
};

/** Loads NCCL once (FAIRKV_NCCL_LIBRARY, then libnccl.so.2, libnccl.so). Sets NCCL_NVLS_ENABLE=0 when unset. */
const NcclStatus& ncclStatus();

/** ncclUniqueId is 128 opaque bytes. */
constexpr int kNcclUniqueIdBytes = 128;
std::vector<unsigned char> ncclGetUniqueIdBytes();

/**
 * Aborts (ncclCommAbort) every rank communicator of this process created with `uniqueId`, from any
 * thread: device work waiting in their collectives ends, and their later all-reduces throw. For the
 * ranks of a group whose other members failed. Returns how many communicators it aborted.
 */
int ncclAbortRanks(const std::vector<unsigned char>& uniqueId);

struct RankSlot;
/** One NCCL communicator per listed device (ncclCommInitAll), or one rank of a multi-process group. */
class NcclGroup {
 public:
  explicit NcclGroup(const std::vector<int>& devices);
  NcclGroup(const std::vector<unsigned char>& uniqueId, int rankCount, int rank, int device);
  /** Leaves the communicators alone (see destroy): a thread or process exiting must not wait for peers. */
  ~NcclGroup();
  /**
   * ncclCommDestroy of every communicator not aborted: it waits for the collectives still in flight (and
   * so for the group's other ranks). With `abort`, a rank's communicator is ncclCommAbort'ed instead (where
   * the library has it): what is in flight is cut, nothing is waited for. Idempotent.
   */
  void destroy(bool abort = false);
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;
  /** In-place sum all-reduce of `count` elements; buffers[i] and streams[i] belong to communicator i. */
  void allReduceSum(const std::vector<void*>& buffers, const std::vector<cudaStream_t>& streams, size_t count,
                    DType dtype);
  size_t size() const { return slot_ ? 1 : comms_.size(); }

 private:
  std::vector<void*> comms_;           // ncclCommInitAll's communicators
  std::shared_ptr<RankSlot> slot_;     // a rank's communicator, shared with the abort registry
};

}  // namespace fairkv
