// The fairkv CUDA addon's Node-API surface (node-addon-api). Typed one-to-one in src/native.ts;
// keep the two in step. Device pointers cross the boundary as BigInt, contexts (device + stream +
// cuBLAS handle + workspace) as small integer ids. Every CUDA failure becomes a JavaScript Error
// whose `cudaError` property holds the cudaError_t code.
#include <napi.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "cublas.h"
#include "kernels/kernels.h"
#include "nccl.h"

namespace fairkv {
namespace {

/**
 * Device time per operation while profiling is on: an event pair recorded around every enqueued
 * operation (kernel, copy, fill, upload, download, all-reduce). Events are pooled and reused.
 */
struct OperationProfiler {
  struct Record {
    std::string name;
    cudaEvent_t start;
    cudaEvent_t end;
    /** Host time inside the addon: argument reads, the launch or library call, the event records. */
    double hostMilliseconds;
  };
  bool active = false;
  std::vector<Record> records;
  std::vector<cudaEvent_t> pool;

  cudaEvent_t take() {
    if (!pool.empty()) {
      cudaEvent_t event = pool.back();
      pool.pop_back();
      return event;
    }
    cudaEvent_t event = nullptr;
    checkCuda(cudaEventCreate(&event), "cudaEventCreate(profile)");
    return event;
  }
  void recycle() {
    for (const Record& record : records) {
      pool.push_back(record.start);
      pool.push_back(record.end);
    }
    records.clear();
  }
  ~OperationProfiler() {
    recycle();
    for (cudaEvent_t event : pool) cudaEventDestroy(event);
  }
};

/** A page-locked staging buffer for downloads. */
struct PinnedBuffer {
  void* data = nullptr;
  size_t bytes = 0;
};

/**
 * Page-locked staging buffers for downloads, kept for reuse: `cudaHostAlloc` and `cudaFreeHost` cost
 * up to a millisecond each and may synchronize with the device (a decode step of stories260K on an
 * H100 spent 1.3 ms in each sampled-token download doing them). Owned jointly by a context and its
 * downloads in flight (one may finish after its context is gone), and touched only on the JavaScript
 * thread: buffers are taken when a download is enqueued and given back when its worker is deleted.
 */
class PinnedPool {
 public:
  PinnedPool() = default;
  PinnedPool(const PinnedPool&) = delete;
  PinnedPool& operator=(const PinnedPool&) = delete;
  ~PinnedPool() {
    for (const PinnedBuffer& buffer : kept_) cudaFreeHost(buffer.data);
  }

  /** The smallest kept buffer of at least `bytes`, else a new one (a power of two from 4 KB up to kLargest). */
  PinnedBuffer take(size_t bytes) {
    auto best = kept_.end();
    for (auto it = kept_.begin(); it != kept_.end(); ++it) {
      if (it->bytes >= bytes && (best == kept_.end() || it->bytes < best->bytes)) best = it;
    }
    if (best != kept_.end()) {
      const PinnedBuffer buffer = *best;
      kept_.erase(best);
      return buffer;
    }
    size_t size = bytes;
    if (size <= kLargest) {
      size = 4096;
      while (size < bytes) size *= 2;
    }
    PinnedBuffer buffer{nullptr, size};
    checkCuda(cudaHostAlloc(&buffer.data, size, cudaHostAllocDefault), "cudaHostAlloc(download staging)");
    return buffer;
  }

  /** Keeps `buffer` for a later download; buffers beyond kKept, or larger than kLargest, are freed. */
  void give(const PinnedBuffer& buffer) {
    if (buffer.data == nullptr) return;
    if (buffer.bytes <= kLargest && kept_.size() < kKept) kept_.push_back(buffer);
    else cudaFreeHost(buffer.data);
  }

 private:
  static constexpr size_t kKept = 8;
  static constexpr size_t kLargest = size_t{64} << 20;
  std::vector<PinnedBuffer> kept_;
};

struct DeviceContext {
  int device = 0;
  cudaStream_t stream = nullptr;
  int multiprocessorCount = 0;
  std::unique_ptr<CublasHandle> cublas;
  void* workspace = nullptr;
  size_t workspaceBytes = 0;
  /** Compute capability major version (9 = Hopper: thread-block clusters). */
  int computeMajor = 0;
  OperationProfiler profiler;
  /**
   * Ragged decode attention's two words (allocated on first use, zeroed): the schedule flag and the
   * per-block schedule's work counter; and the last call's number.
   */
  unsigned int* attentionScheduleReady = nullptr;
  unsigned int attentionScheduleEpoch = 0;
  /** Decode attention and the tensor-core matmul may stream with bulk tensor copies (Hopper+; FAIRKV_CUDA_BULK_COPIES=0: never). */
  bool bulkCopies = false;
  /** Staging buffers of this context's downloads. */
  std::shared_ptr<PinnedPool> pinnedPool = std::make_shared<PinnedPool>();
  /** runMatmul's path where a call names none (FAIRKV_CUDA_MATMUL_PATH; 0 = automatic). */
  int matmulPath = 0;
  /** The decode matmul may use warpgroup MMAs: compute capability 9.0 and the addon holds sm_90a code. */
  bool warpgroupMma = false;
  /** The automatic matmul path may take the GEMV kernel (FAIRKV_CUDA_GEMV=0: never; benchmarks). */
  bool gemv = true;
};

/** Records an event pair around one operation on the context's stream while its profiler is active. */
class ProfiledOperation {
 public:
  ProfiledOperation(DeviceContext& context, const std::string& name) : context_(context) {
    if (!context.profiler.active) return;
    started_ = std::chrono::steady_clock::now();
    record_ = {name, context.profiler.take(), context.profiler.take(), 0.0};
    checkCuda(cudaEventRecord(record_.start, context.stream), "cudaEventRecord(profile)");
    armed_ = true;
  }
  ~ProfiledOperation() {
    if (!armed_) return;
    // Recorded even when the operation threw: the pair then times nothing, and is still released.
    cudaEventRecord(record_.end, context_.stream);
    record_.hostMilliseconds =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
    context_.profiler.records.push_back(std::move(record_));
  }
  ProfiledOperation(const ProfiledOperation&) = delete;
  ProfiledOperation& operator=(const ProfiledOperation&) = delete;

 private:
  DeviceContext& context_;
  OperationProfiler::Record record_{};
  std::chrono::steady_clock::time_point started_{};
  bool armed_ = false;
};

// One registry per JavaScript thread: the main thread and every worker thread (one per GPU when the
// runtime drives each device from its own thread) create and use only their own contexts and NCCL
// ranks, so no lookup races with another thread's insertions. The objects live on the heap, so async
// work already queued keeps valid references.
thread_local std::map<int, std::unique_ptr<DeviceContext>> contexts;
thread_local std::map<int, std::unique_ptr<NcclGroup>> ncclGroups;
thread_local int nextContextId = 1;
thread_local int nextGroupId = 1;

[[noreturn]] void throwJs(Napi::Env env, const std::string& message, int cudaCode = 0) {
  Napi::Error error = Napi::Error::New(env, message);
  if (cudaCode != 0) error.Set("cudaError", Napi::Number::New(env, cudaCode));
  throw error;
}

/** Runs `body`, turning C++ and CUDA exceptions into JavaScript errors. */
template <typename Body>
Napi::Value guarded(const Napi::CallbackInfo& info, Body&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const CudaError& error) {
    throwJs(info.Env(), error.what(), error.code);
  } catch (const std::exception& error) {
    throwJs(info.Env(), error.what());
  }
}

DeviceContext& contextOf(const Napi::Value& value) {
  const int id = value.As<Napi::Number>().Int32Value();
  auto found = contexts.find(id);
  if (found == contexts.end()) throw std::invalid_argument("unknown CUDA context " + std::to_string(id));
  checkCuda(cudaSetDevice(found->second->device), "cudaSetDevice");
  return *found->second;
}

uint64_t pointerOf(const Napi::Value& value) {
  bool lossless = true;
  return value.As<Napi::BigInt>().Uint64Value(&lossless);
}

/** A device pointer (or CUDA handle such as cudaEvent_t) passed from JavaScript as a bigint. */
template <typename P>
P asPointer(const Napi::Value& value) {
  return reinterpret_cast<P>(static_cast<uintptr_t>(pointerOf(value)));
}

template <typename T = void>
T* field(const Napi::Object& args, const char* name) {
  const Napi::Value value = args.Get(name);
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  if (!value.IsBigInt()) throw std::invalid_argument(std::string("argument ") + name + " must be a device pointer (bigint)");
  return asPointer<T*>(value);
}

int intField(const Napi::Object& args, const char* name) {
  const Napi::Value value = args.Get(name);
  if (!value.IsNumber()) throw std::invalid_argument(std::string("argument ") + name + " must be a number");
  return value.As<Napi::Number>().Int32Value();
}

double numberField(const Napi::Object& args, const char* name) {
  const Napi::Value value = args.Get(name);
  if (!value.IsNumber()) throw std::invalid_argument(std::string("argument ") + name + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

/** An optional number argument (the benchmarks' knobs, not part of the contract): `fallback` when absent. */
int optionalIntField(const Napi::Object& args, const char* name, int fallback) {
  const Napi::Value value = args.Get(name);
  return value.IsNumber() ? value.As<Napi::Number>().Int32Value() : fallback;
}

DType dtypeField(const Napi::Object& args, const char* name) { return static_cast<DType>(intField(args, name)); }

void* ensureWorkspace(DeviceContext& context, size_t bytes) {
  if (bytes <= context.workspaceBytes) return context.workspace;
  checkCuda(cudaStreamSynchronize(context.stream), "cudaStreamSynchronize");
  if (context.workspace != nullptr) checkCuda(cudaFree(context.workspace), "cudaFree(workspace)");
  context.workspace = nullptr;
  context.workspaceBytes = 0;
  const size_t rounded = (bytes + (1 << 20) - 1) / (1 << 20) * (1 << 20);
  checkCuda(cudaMalloc(&context.workspace, rounded), "cudaMalloc(workspace)");
  context.workspaceBytes = rounded;
  return context.workspace;
}

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  int runtimeVersion = 0;
  cudaRuntimeGetVersion(&runtimeVersion);
  int driverVersion = 0;
  cudaDriverGetVersion(&driverVersion);
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  result.Set("runtimeVersion", runtimeVersion);
  result.Set("driverVersion", driverVersion);
  result.Set("deviceCount", error == cudaSuccess ? count : 0);
  result.Set("errorCode", static_cast<int>(error));
  result.Set("errorName", error == cudaSuccess ? "" : cudaGetErrorName(error));
  result.Set("errorMessage", error == cudaSuccess ? "" : cudaGetErrorString(error));
  return result;
}

Napi::Value DeviceProperties(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const int device = info[0].As<Napi::Number>().Int32Value();
    cudaDeviceProp properties{};
    checkCuda(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties");
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("name", properties.name);
    result.Set("computeCapability", std::to_string(properties.major) + "." + std::to_string(properties.minor));
    result.Set("multiprocessorCount", properties.multiProcessorCount);
    result.Set("totalMemoryBytes", static_cast<double>(properties.totalGlobalMem));
    result.Set("l2CacheBytes", properties.l2CacheSize);
    result.Set("sharedMemoryPerBlockOptin", static_cast<double>(properties.sharedMemPerBlockOptin));
    result.Set("memoryBusWidthBits", properties.memoryBusWidth);
    return result;
  });
}

Napi::Value LibraryInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  const CublasStatus& cublas = cublasStatus();
  Napi::Object cublasInfo = Napi::Object::New(env);
  cublasInfo.Set("available", cublas.available);
  cublasInfo.Set("path", cublas.path);
  cublasInfo.Set("error", cublas.error);
  result.Set("cublas", cublasInfo);
  const NcclStatus& nccl = ncclStatus();
  Napi::Object ncclInfo = Napi::Object::New(env);
  ncclInfo.Set("available", nccl.available);
  ncclInfo.Set("path", nccl.path);
  ncclInfo.Set("error", nccl.error);
  ncclInfo.Set("version", nccl.version);
  ncclInfo.Set("abortable", nccl.abortable);
  result.Set("nccl", ncclInfo);
  return result;
}

/** Whether the environment variable `name` is "0" (a hardware path switched off for tests and benchmarks). */
bool switchedOff(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && std::string(value) == "0";
}

Napi::Value CreateContext(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto context = std::make_unique<DeviceContext>();
    context->device = info[0].As<Napi::Number>().Int32Value();
    checkCuda(cudaSetDevice(context->device), "cudaSetDevice");
    checkCuda(cudaStreamCreateWithFlags(&context->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    checkCuda(cudaDeviceGetAttribute(&context->multiprocessorCount, cudaDevAttrMultiProcessorCount, context->device),
              "cudaDeviceGetAttribute");
    if (cublasStatus().available) context->cublas = std::make_unique<CublasHandle>(context->device, context->stream);
    checkCuda(cudaDeviceGetAttribute(&context->computeMajor, cudaDevAttrComputeCapabilityMajor, context->device),
              "cudaDeviceGetAttribute");
    context->bulkCopies = context->computeMajor >= 9 && !switchedOff("FAIRKV_CUDA_BULK_COPIES");
#ifndef FAIRKV_PROBE_ONLY
    // FAIRKV_CUDA_WARPGROUP_MMA=0: the mma.sync kernels on Hopper too (with FAIRKV_CUDA_BULK_COPIES=0, the
    // paths an Ampere or Ada GPU runs, so that a Hopper machine can test them)
    context->warpgroupMma =
        context->computeMajor == 9 && matmulWarpgroupMmaBuilt() && !switchedOff("FAIRKV_CUDA_WARPGROUP_MMA");
#endif
    // the matmul path when a call names none (tests and benchmarks: FAIRKV_CUDA_MATMUL_PATH=2 runs the
    // conformance suite through the tensor-core kernel); see runMatmul
    const char* gemv = std::getenv("FAIRKV_CUDA_GEMV");
    if (gemv != nullptr && *gemv != '\0') {
      const std::string value(gemv);
      if (value != "0" && value != "1")
        throw std::invalid_argument("FAIRKV_CUDA_GEMV must be 0 or 1, got \"" + value + "\"");
      context->gemv = value == "1";
    }
    const char* matmulPath = std::getenv("FAIRKV_CUDA_MATMUL_PATH");
    if (matmulPath != nullptr && *matmulPath != '\0') {
      const std::string value(matmulPath);
      if (value != "0" && value != "1" && value != "2" && value != "3" && value != "4")
        throw std::invalid_argument("FAIRKV_CUDA_MATMUL_PATH must be 0, 1, 2, 3 or 4, got \"" + value + "\"");
      context->matmulPath = value[0] - '0';
    }
    const int id = nextContextId++;
    contexts[id] = std::move(context);
    return Napi::Number::New(info.Env(), id);
  });
}

Napi::Value DestroyContext(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const int id = info[0].As<Napi::Number>().Int32Value();
    auto found = contexts.find(id);
    if (found != contexts.end()) {
      DeviceContext& context = *found->second;
      cudaSetDevice(context.device);
      cudaStreamSynchronize(context.stream);
      context.cublas.reset();
      if (context.workspace != nullptr) cudaFree(context.workspace);
      if (context.attentionScheduleReady != nullptr) cudaFree(context.attentionScheduleReady);
      cudaStreamDestroy(context.stream);
      contexts.erase(found);
    }
    return info.Env().Undefined();
  });
}

Napi::Value MemoryInfo(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    contextOf(info[0]);
    size_t freeBytes = 0, totalBytes = 0;
    checkCuda(cudaMemGetInfo(&freeBytes, &totalBytes), "cudaMemGetInfo");
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("freeBytes", static_cast<double>(freeBytes));
    result.Set("totalBytes", static_cast<double>(totalBytes));
    return result;
  });
}

Napi::Value Allocate(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    contextOf(info[0]);
    const double bytes = info[1].As<Napi::Number>().DoubleValue();
    void* pointer = nullptr;
    checkCuda(cudaMalloc(&pointer, static_cast<size_t>(bytes)), "cudaMalloc");
    return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(pointer)));
  });
}

Napi::Value Release(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    // Work already enqueued may still read the buffer: free it only once the stream is idle.
    checkCuda(cudaStreamSynchronize(context.stream), "cudaStreamSynchronize");
    checkCuda(cudaFree(asPointer<void*>(info[1])), "cudaFree");
    return info.Env().Undefined();
  });
}

uint16_t toHalfBits(float value) {
  const __half h = __float2half_rn(value);
  uint16_t bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}
uint16_t toBfloat16Bits(float value) {
  const __nv_bfloat16 b = __float2bfloat16_rn(value);
  uint16_t bits;
  std::memcpy(&bits, &b, 2);
  return bits;
}

Napi::Value Upload(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    auto* base = asPointer<unsigned char*>(info[1]);
    const size_t byteOffset = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
    Napi::TypedArray data = info[3].As<Napi::TypedArray>();
    const DType dtype = static_cast<DType>(info[4].As<Napi::Number>().Int32Value());
    Napi::ArrayBuffer buffer = data.ArrayBuffer();
    const unsigned char* source = static_cast<const unsigned char*>(buffer.Data()) + data.ByteOffset();
    const size_t count = data.ElementLength();
    ProfiledOperation profiled(context, "upload");
    if (data.TypedArrayType() == napi_float32_array && (dtype == DType::F16 || dtype == DType::BF16)) {
      const float* values = reinterpret_cast<const float*>(source);
      std::vector<uint16_t> converted(count);
      for (size_t i = 0; i < count; ++i)
        converted[i] = dtype == DType::F16 ? toHalfBits(values[i]) : toBfloat16Bits(values[i]);
      checkCuda(cudaMemcpyAsync(base + byteOffset, converted.data(), count * 2, cudaMemcpyHostToDevice, context.stream),
                "cudaMemcpyAsync(upload)");
      // The staging vector dies here: make sure the copy has consumed it.
      checkCuda(cudaStreamSynchronize(context.stream), "cudaStreamSynchronize(upload)");
    } else {
      checkCuda(cudaMemcpyAsync(base + byteOffset, source, data.ByteLength(), cudaMemcpyHostToDevice, context.stream),
                "cudaMemcpyAsync(upload)");
      // Pageable source: the runtime stages it before returning, so the caller may reuse the array.
    }
    return info.Env().Undefined();
  });
}

/**
 * Completes a download or a synchronize off the JavaScript thread. The device-to-host copy (into
 * pinned memory) and an event are enqueued on the stream by the caller, in call order; the worker
 * only waits for that event, so work enqueued later (a fill, another kernel) never overtakes it.
 */
class StreamWorker : public Napi::AsyncWorker {
 public:
  StreamWorker(Napi::Env env, DeviceContext& context, size_t elementCount, DType dtype)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        device_(context.device),
        pool_(context.pinnedPool),
        elementCount_(elementCount),
        dtype_(dtype) {}
  // Deleted on the JavaScript thread (after OnOK / OnError, or when enqueueing failed).
  ~StreamWorker() override {
    releaseEvent();
    // A staging buffer goes back to the pool only once its copy is known to be done; after a failure
    // it is freed instead (cudaFreeHost waits for the device).
    if (copyPending_) {
      if (staging_.data != nullptr) cudaFreeHost(staging_.data);
    } else {
      pool_->give(staging_);
    }
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  /** Enqueues the copy of `source` (when not null) and the completion event on `stream`. */
  void enqueue(const unsigned char* source, cudaStream_t stream) {
    if (source != nullptr && elementCount_ > 0) {
      bytes_ = elementCount_ * dtypeBytes(dtype_);
      staging_ = pool_->take(bytes_);
      copyPending_ = true;
      checkCuda(cudaMemcpyAsync(staging_.data, source, bytes_, cudaMemcpyDeviceToHost, stream),
                "cudaMemcpyAsync(download)");
    }
    checkCuda(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), "cudaEventCreate");
    checkCuda(cudaEventRecord(event_, stream), "cudaEventRecord");
  }

  void Execute() override {
    try {
      checkCuda(cudaSetDevice(device_), "cudaSetDevice");
      checkCuda(cudaEventSynchronize(event_), "cudaEventSynchronize");
      copyPending_ = false;  // the event follows the copy on the stream
      if (bytes_ > 0) {
        host_.resize(bytes_);
        std::memcpy(host_.data(), staging_.data, bytes_);
      }
      releaseEvent();
    } catch (const CudaError& error) {
      cudaCode_ = error.code;
      SetError(error.what());
    } catch (const std::exception& error) {
      SetError(error.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (!isDownload_) {
      deferred_.Resolve(env.Undefined());
      return;
    }
    if (dtype_ == DType::I32) {
      Napi::Int32Array result = Napi::Int32Array::New(env, elementCount_);
      if (bytes_ > 0) std::memcpy(result.Data(), host_.data(), bytes_);
      deferred_.Resolve(result);
      return;
    }
    Napi::Float32Array result = Napi::Float32Array::New(env, elementCount_);
    float* out = result.Data();
    if (dtype_ == DType::F32) {
      if (bytes_ > 0) std::memcpy(out, host_.data(), bytes_);
    } else {
      const uint16_t* bits = reinterpret_cast<const uint16_t*>(host_.data());
      for (size_t i = 0; i < elementCount_; ++i) {
        if (dtype_ == DType::F16) {
          __half h;
          std::memcpy(&h, &bits[i], 2);
          out[i] = __half2float(h);
        } else {
          const uint32_t widened = static_cast<uint32_t>(bits[i]) << 16;
          std::memcpy(&out[i], &widened, 4);
        }
      }
    }
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override {
    Napi::Error rejected = Napi::Error::New(Env(), error.Message());
    if (cudaCode_ != 0) rejected.Set("cudaError", Napi::Number::New(Env(), cudaCode_));
    deferred_.Reject(rejected.Value());
  }

  bool isDownload_ = false;

 private:
  void releaseEvent() {
    if (event_ != nullptr) cudaEventDestroy(event_);
    event_ = nullptr;
  }

  Napi::Promise::Deferred deferred_;
  int device_;
  std::shared_ptr<PinnedPool> pool_;
  PinnedBuffer staging_;  // the copy's page-locked destination, back to pool_ when this worker is deleted
  bool copyPending_ = false;  // a copy into staging_ was enqueued and not yet waited for
  size_t elementCount_;
  DType dtype_;
  size_t bytes_ = 0;
  cudaEvent_t event_ = nullptr;
  std::vector<unsigned char> host_;
  int cudaCode_ = 0;
};

/** Enqueues a worker's copy (when `source` is set) and event on `stream`, then queues it; frees it if that fails. */
Napi::Promise startStreamWorker(StreamWorker* worker, const unsigned char* source, cudaStream_t stream) {
  try {
    worker->enqueue(source, stream);
  } catch (...) {
    delete worker;
    throw;
  }
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value Download(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    auto* base = asPointer<const unsigned char*>(info[1]);
    const size_t byteOffset = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
    const size_t elementCount = static_cast<size_t>(info[3].As<Napi::Number>().DoubleValue());
    const DType dtype = static_cast<DType>(info[4].As<Napi::Number>().Int32Value());
    auto* worker = new StreamWorker(info.Env(), context, elementCount, dtype);
    worker->isDownload_ = true;
    ProfiledOperation profiled(context, "download");
    return startStreamWorker(worker, base + byteOffset, context.stream);
  });
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    return startStreamWorker(new StreamWorker(info.Env(), context, 0, DType::F32), nullptr, context.stream);
  });
}

Napi::Value SynchronizeNow(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    checkCuda(cudaStreamSynchronize(context.stream), "cudaStreamSynchronize");
    return info.Env().Undefined();
  });
}

Napi::Value Fill(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    auto* base = asPointer<unsigned char*>(info[1]);
    const size_t byteOffset = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
    const DType dtype = static_cast<DType>(info[3].As<Napi::Number>().Int32Value());
    const long long count = static_cast<long long>(info[4].As<Napi::Number>().DoubleValue());
    const double value = info[5].As<Napi::Number>().DoubleValue();
#ifdef FAIRKV_PROBE_ONLY
    (void)base, (void)byteOffset, (void)dtype, (void)count, (void)value, (void)context;
    throw std::runtime_error("this addon is a probe-only build without kernels (scripts/build-native.mjs --probe-only)");
#else
    ProfiledOperation profiled(context, "fill");
    fillValue(base + byteOffset, dtype, count, value, context.stream);
#endif
    return info.Env().Undefined();
  });
}

Napi::Value Copy(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    auto* destination = asPointer<unsigned char*>(info[1]);
    const size_t destinationOffset = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
    auto* source = asPointer<const unsigned char*>(info[3]);
    const size_t sourceOffset = static_cast<size_t>(info[4].As<Napi::Number>().DoubleValue());
    const size_t bytes = static_cast<size_t>(info[5].As<Napi::Number>().DoubleValue());
    ProfiledOperation profiled(context, "copy");
    if (bytes > 0)
      checkCuda(cudaMemcpyAsync(destination + destinationOffset, source + sourceOffset, bytes,
                                cudaMemcpyDeviceToDevice, context.stream),
                "cudaMemcpyAsync(device to device)");
    return info.Env().Undefined();
  });
}

#ifndef FAIRKV_PROBE_ONLY
/** Projections split into outputs of unequal widths take the tensor-core kernel up to this many rows (it writes each output in place). */
constexpr int kMatmulSplitTensorCoreRows = 32;
/**
 * f32 weights of more than kMatmulF32SmallWeightBytes take the tensor-core kernel (TF32 split) up to this
 * many rows; above it, up to kMatmulTensorCoreRowsF32, only projections split into several outputs do
 * (bench/cuda-matmul/NOTES.md, "Session 15").
 */
constexpr int kMatmulF32TensorCoreRows = 32;
/**
 * f32 weights up to this size stay off the tensor-core kernel (unless split): their few output tiles
 * leave most SMs idle while each runs three MMAs per product (256 x 4096, 4 MiB, a 4-way k or v shard,
 * ran 1.35x slower than cuBLAS at 24-32 rows; 512 x 4096 was 1.1-1.3x faster from 9 to 32 rows).
 */
constexpr long long kMatmulF32SmallWeightBytes = 4LL << 20;
/**
 * Whether the automatic matmul path takes the GEMV kernel: at one row every weight (it matched or beat
 * cuBLAS and the tensor-core kernel on every llama-3.1-8b projection at 1 and 4-way tensor parallelism,
 * with the L2 read cold, and it starts loading weight while the kernel ahead runs); at 2-4 rows f16/bf16
 * weights up to 16 MiB with an inner dimension of 2048 or more, where the other paths' fixed costs
 * dominate (bench/cuda-matmul/NOTES.md, "Session 11"), as f32 weights do at 5-8 rows; f32 weights at
 * 2-4 rows all (cuBLAS's f32 GEMM was 1.2-1.7x slower per layer, "Session 14"; from 5 rows the
 * tensor-core kernel's TF32 split takes the larger ones, "Session 15").
 */
bool gemvPreferred(const DeviceContext& context, const MatmulParams& p) {
  constexpr long long kSmallWeightBytes = 16LL << 20;
  const long long weightBytes = static_cast<long long>(p.outerSize) * p.innerSize * dtypeBytes(p.weightDType);
  const bool f32 = p.weightDType == DType::F32 && p.rowCount <= kMatmulGemvRows;
  return context.gemv && matmulGemvSupports(p) &&
         (p.rowCount == 1 || f32 || (weightBytes <= kSmallWeightBytes && p.innerSize >= 2048));
}

void runMatmul(DeviceContext& context, const Napi::Object& a) {
  // Split outputs (a fused projection): output, then output2 and output3 take the next weight rows.
  MatmulOutputs outputs{{field<float>(a, "output")}, {intField(a, "outerSize")}, 1};
  for (const auto& [output, size] : {std::pair{"output2", "outerSize2"}, std::pair{"output3", "outerSize3"}}) {
    float* data = field<float>(a, output);
    if (data == nullptr) break;
    outputs.data[outputs.count] = data;
    outputs.widths[outputs.count] = intField(a, size);
    ++outputs.count;
  }
  int total = 0;
  for (int s = 0; s < outputs.count; ++s) total += outputs.widths[s];
  // p covers the whole projection; its output is the first segment's (used as is when there is one)
  MatmulParams p{field<const float>(a, "input"), field<const void>(a, "weight"), dtypeField(a, "weightDType"),
                 outputs.data[0], intField(a, "rowCount"), intField(a, "innerSize"), total};
  // matmulPath (benchmarks; not part of the contract): 0 = automatic, 1 = never the tensor-core kernel
  // (the streaming kernel up to kMatmulStreamingRows rows, cuBLAS above), 2 = the tensor-core kernel
  // wherever it is supported, 3 = cuBLAS at any row count, 4 = the GEMV kernel wherever it is supported
  // (up to 4 rows, 8 with f32 weights). Automatic is the GEMV kernel where gemvPreferred says so, then
  // cuBLAS wherever it loaded (with a cold L2, back to back, it matched or beat the tensor-core kernels
  // on every unsplit llama-3.1-8b f16/bf16 shard shape on an H100, bench/cuda-matmul), except:
  // - projections split into several outputs, which the tensor-core kernels write in place while cuBLAS
  //   needs a split kernel or a batched GEMM: those take the tensor-core kernel up to
  //   kMatmulSplitTensorCoreRows rows (unequal widths, q | k | v), or at every row count it covers where
  //   its warpgroup-MMA form is built (Hopper: as fast up to 32 rows, 2-4 us faster per call from 58 to 124);
  // - f32 weights of more than kMatmulF32SmallWeightBytes, which the tensor-core kernel takes up to
  //   kMatmulF32TensorCoreRows rows (its TF32 split ran a median 1.56x faster than cuBLAS's f32 GEMM per
  //   call from 5 to 32 rows on an H100), and split f32 projections up to kMatmulTensorCoreRowsF32.
  // Without cuBLAS the tensor-core kernel, then the streaming kernel.
  const int path = optionalIntField(a, "matmulPath", context.matmulPath);
  if (path == 4 ? matmulGemvSupports(p) : path == 0 && gemvPreferred(context, p)) {
    matmulGemv(p, outputs, context.multiprocessorCount, context.computeMajor >= 9, context.stream);
    return;
  }
  const bool tensorCore = matmulTensorCoreSupports(p);
  const bool splitInPlace =
      outputs.count > 1 && (context.warpgroupMma || (p.rowCount <= kMatmulSplitTensorCoreRows &&
                                                     !CublasHandle::takesEqualSegments(outputs)));
  const bool f32TensorCore =
      p.weightDType == DType::F32 &&
      (outputs.count > 1 || (p.rowCount <= kMatmulF32TensorCoreRows &&
                             static_cast<long long>(total) * p.innerSize * 4 > kMatmulF32SmallWeightBytes));
  const bool useTensorCore = path == 2 ? tensorCore
                                       : path != 1 && tensorCore &&
                                             (!context.cublas || (path == 0 && (splitInPlace || f32TensorCore)));
  if (useTensorCore) {
    void* workspace = ensureWorkspace(context, matmulTensorCoreWorkspaceBytes(p));
    // bulkCopies (benchmarks; not part of the contract): 0 = the weight by per-thread cp.async, not TMA
    // warpgroupMma (benchmarks; not part of the contract): 0 = the mma.sync kernel even where wgmma is built
    matmulTensorCore(p, outputs, workspace, context.multiprocessorCount, context.computeMajor >= 9,
                     context.bulkCopies && optionalIntField(a, "bulkCopies", 1) != 0,
                     context.warpgroupMma && optionalIntField(a, "warpgroupMma", 1) != 0, context.stream);
    return;
  }
  if (!context.cublas || (path == 1 && p.rowCount <= kMatmulStreamingRows)) {
    // one streaming pass per segment, each over its own weight rows
    long long firstRow = 0;
    for (int s = 0; s < outputs.count; ++s) {
      MatmulParams segment = p;
      segment.weight = static_cast<const unsigned char*>(p.weight) + firstRow * p.innerSize * dtypeBytes(p.weightDType);
      segment.output = outputs.data[s];
      segment.outerSize = outputs.widths[s];
      firstRow += outputs.widths[s];
      for (int row = 0; row < p.rowCount; row += kMatmulStreamingRows) {
        MatmulParams slice = segment;
        slice.input = p.input + static_cast<long long>(row) * p.innerSize;
        slice.output = segment.output + static_cast<long long>(row) * segment.outerSize;
        slice.rowCount = std::min(kMatmulStreamingRows, p.rowCount - row);
        matmulStreaming(slice, context.stream);
      }
    }
    return;
  }
  // cuBLAS: segments of equal width (gate | up) in one strided batched GEMM, in place; otherwise one
  // GEMM over the whole projection (into the workspace when it is split), then the split
  const size_t convertedBytes =
      p.weightDType == DType::F32 ? 0 : (static_cast<size_t>(p.rowCount) * p.innerSize * 2 + 255) / 256 * 256;
  if (outputs.count > 1) {
    void* converted = convertedBytes > 0 ? ensureWorkspace(context, convertedBytes) : nullptr;
    if (context.cublas->matmulEqualSegments(p, outputs, converted, context.stream)) return;
  }
  const size_t wholeBytes = outputs.count > 1 ? static_cast<size_t>(p.rowCount) * total * sizeof(float) : 0;
  auto* workspace = static_cast<unsigned char*>(ensureWorkspace(context, std::max<size_t>(1, convertedBytes + wholeBytes)));
  if (outputs.count > 1) p.output = reinterpret_cast<float*>(workspace + convertedBytes);
  context.cublas->matmul(p, convertedBytes > 0 ? workspace : nullptr, context.stream);
  if (outputs.count > 1) splitColumns(p.output, p.rowCount, total, outputs, context.stream);
}

KvPoolParams kvPoolOf(const Napi::Object& a) {
  return KvPoolParams{field<void>(a, "pool"),       dtypeField(a, "poolDType"), field<const int>(a, "blockTable"),
                      intField(a, "blockCount"),    intField(a, "blockSize"),   intField(a, "headDim"),
                      intField(a, "blockTableLength")};
}
#endif

Napi::Value Run(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
#ifdef FAIRKV_PROBE_ONLY
    (void)context;
    throw std::runtime_error("this addon is a probe-only build without kernels (scripts/build-native.mjs --probe-only)");
#else
    const std::string kernel = info[1].As<Napi::String>().Utf8Value();
    const Napi::Object a = info[2].As<Napi::Object>();
    cudaStream_t stream = context.stream;
    ProfiledOperation profiled(context, kernel);
    if (kernel == "embedding-gather") {
      embeddingGather({field<const void>(a, "table"), dtypeField(a, "tableDType"), field<const int>(a, "tokens"),
                       field<float>(a, "output"), intField(a, "rowCount"), intField(a, "vocabSize"),
                       intField(a, "hiddenSize")},
                      stream);
    } else if (kernel == "rms-norm") {
      rmsNorm({field<float>(a, "input"), field<const void>(a, "weight"), dtypeField(a, "weightDType"),
               field<float>(a, "output"), intField(a, "rowCount"), intField(a, "size"),
               static_cast<float>(numberField(a, "epsilon")), field<const float>(a, "addend")},
              stream);
    } else if (kernel == "matmul") {
      runMatmul(context, a);
    } else if (kernel == "rope") {
      rope({field<float>(a, "data"), field<const int>(a, "positions"), field<const float>(a, "table"),
            intField(a, "rowCount"), intField(a, "headCount"), intField(a, "headDim"), intField(a, "tablePositionCount"),
            intField(a, "halfSplit") != 0},
           stream);
    } else if (kernel == "swiglu") {
      swiglu(field<const float>(a, "gate"), field<const float>(a, "up"), field<float>(a, "output"),
             static_cast<long long>(numberField(a, "elementCount")), stream);
    } else if (kernel == "add-in-place") {
      addInPlace(field<float>(a, "target"), field<const float>(a, "addend"),
                 static_cast<long long>(numberField(a, "elementCount")), stream);
    } else if (kernel == "prefill-attention") {
      const PrefillAttentionParams p{field<const float>(a, "query"), field<const float>(a, "key"),
                                     field<const float>(a, "value"), field<float>(a, "output"),
                                     field<float>(a, "windowScores"), intField(a, "tokenCount"),
                                     intField(a, "queryHeadCount"), intField(a, "kvHeadCount"), intField(a, "headDim"),
                                     intField(a, "windowSize"), static_cast<float>(numberField(a, "scale")),
                                     field<float>(a, "accumulatedScores"), field<float>(a, "windowScoreSums"),
                                     optionalIntField(a, "kvRounding", 0), optionalIntField(a, "productRounding", 0)};
      // tensorCores (benchmarks; not part of the contract): 0 = the element kernel everywhere
      const bool tensorCores =
          prefillAttentionUsesTensorCores(p, context.computeMajor) && optionalIntField(a, "tensorCores", 1) != 0;
      const size_t bytes = tensorCores ? prefillAttentionWorkspaceBytes(p) : 0;
      // warpgroupMma (benchmarks; not part of the contract): 0 = the mma.sync kernels even where wgmma is built
      const bool warpgroupMma = context.warpgroupMma && optionalIntField(a, "warpgroupMma", 1) != 0;
      prefillAttention(p, bytes > 0 ? ensureWorkspace(context, bytes) : nullptr, tensorCores, warpgroupMma, stream);
    } else if (kernel == "kv-append") {
      kvAppend({kvPoolOf(a), field<const float>(a, "key"), field<const float>(a, "value"), field<const int>(a, "entries"),
                intField(a, "rowCount"), intField(a, "kvHeadCount"), intField(a, "entryCount")},
               stream);
    } else if (kernel == "kv-compact") {
      kvCompact({kvPoolOf(a), field<const int>(a, "keptIndices"), field<const int>(a, "sequences"),
                 intField(a, "sequenceCount"), intField(a, "keptIndexCount")},
                stream);
    } else if (kernel == "ragged-decode-attention") {
      // itemsPerMultiprocessor (benchmarks; not part of the contract): a forced item count, used as given
      // (the same fewest and most items, never halved for small calls)
      const Napi::Value forcedItems = a.Get("itemsPerMultiprocessor");
      const bool forced = forcedItems.IsNumber();
      const int itemsPerMultiprocessor = forced ? forcedItems.As<Napi::Number>().Int32Value() : 0;
      RaggedDecodeAttentionParams p{field<const float>(a, "query"),
                                    field<float>(a, "output"),
                                    field<const void>(a, "pool"),
                                    dtypeField(a, "poolDType"),
                                    field<const int>(a, "blockTable"),
                                    field<const int>(a, "pairs"),
                                    intField(a, "pairCount"),
                                    intField(a, "kvHeadCount"),
                                    intField(a, "groupSize"),
                                    intField(a, "headDim"),
                                    intField(a, "blockSize"),
                                    static_cast<float>(numberField(a, "scale")),
                                    context.multiprocessorCount * (forced ? itemsPerMultiprocessor : 8),
                                    context.multiprocessorCount * (forced ? itemsPerMultiprocessor : 16),
                                    2048,
                                    64,
                                    itemsPerMultiprocessor > 0 ? 0 : 768,
                                    context.multiprocessorCount};
      // dependentLaunch (benchmarks; not part of the contract): 0 = plain launches
      p.dependentLaunch = context.computeMajor >= 9 && optionalIntField(a, "dependentLaunch", 1) != 0;
      p.trace = field<unsigned long long>(a, "trace");  // benchmarks only: the call's timeline
      p.blockCount = intField(a, "blockCount");
      // bulkCopies (benchmarks; not part of the contract): 0 = per-lane cp.async stages, not TMA
      p.bulkCopies = context.bulkCopies && optionalIntField(a, "bulkCopies", 1) != 0;
      // tensorCores (benchmarks; not part of the contract): 0 = the CUDA-core kernel for every call
      p.tensorCores = optionalIntField(a, "tensorCores", 1) != 0;
      // fusedSchedule (benchmarks; not part of the contract): 0 = run the schedule kernel first
      if (optionalIntField(a, "fusedSchedule", 1) != 0) {
        if (context.attentionScheduleReady == nullptr) {
          // two words: the schedule flag and the per-block schedule's work counter
          checkCuda(cudaMalloc(&context.attentionScheduleReady, 2 * sizeof(unsigned int)), "cudaMalloc(schedule words)");
          checkCuda(cudaMemsetAsync(context.attentionScheduleReady, 0, 2 * sizeof(unsigned int), stream),
                    "cudaMemsetAsync(schedule words)");
        }
        if (++context.attentionScheduleEpoch == 0) ++context.attentionScheduleEpoch;  // 0 is the zeroed flag
        p.scheduleReady = context.attentionScheduleReady;
        p.scheduleEpoch = context.attentionScheduleEpoch;
        p.workCounter = reinterpret_cast<int*>(context.attentionScheduleReady + 1);
        // localSchedule (benchmarks; not part of the contract): 0 = block 0 builds the schedule for all
        p.localSchedule = optionalIntField(a, "localSchedule", 1) != 0;
      }
      void* workspace = ensureWorkspace(context, raggedDecodeAttentionWorkspaceBytes(p));
      raggedDecodeAttention(p, workspace, stream);
    } else if (kernel == "argmax") {
      argmax(field<const float>(a, "logits"), field<int>(a, "output"), intField(a, "rowCount"), intField(a, "vocabSize"),
             stream);
    } else if (kernel == "top-p-sample") {
      TopPSampleParams p{field<const float>(a, "logits"), field<const float>(a, "temperatures"),
                         field<const float>(a, "topPs"),  field<const int>(a, "seeds"),
                         field<int>(a, "output"),         intField(a, "rowCount"),
                         intField(a, "vocabSize")};
      const size_t bytes = topPSampleWorkspaceBytes(p.rowCount, p.vocabSize);
      topPSample(p, ensureWorkspace(context, bytes), bytes, stream);
    } else {
      throw std::invalid_argument("unknown kernel " + kernel);
    }
    return info.Env().Undefined();
#endif
  });
}

Napi::Value ProfileStart(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    context.profiler.recycle();
    context.profiler.active = true;
    return info.Env().Undefined();
  });
}

Napi::Value ProfileStop(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    OperationProfiler& profiler = context.profiler;
    profiler.active = false;
    checkCuda(cudaStreamSynchronize(context.stream), "cudaStreamSynchronize(profile)");
    struct Total {
      int count = 0;
      double milliseconds = 0;
      double hostMilliseconds = 0;
    };
    std::map<std::string, Total> totals;
    double busy = 0, span = 0;
    // The first maxCalls operations one by one: name, start from the first operation's start, duration.
    const size_t maxCalls = static_cast<size_t>(std::max(0.0, info[1].As<Napi::Number>().DoubleValue()));
    Napi::Env env = info.Env();
    Napi::Array calls = Napi::Array::New(env);
    for (const OperationProfiler::Record& record : profiler.records) {
      float milliseconds = 0.f;
      checkCuda(cudaEventElapsedTime(&milliseconds, record.start, record.end), "cudaEventElapsedTime(profile)");
      if (calls.Length() < maxCalls) {
        float start = 0.f;
        checkCuda(cudaEventElapsedTime(&start, profiler.records.front().start, record.start),
                  "cudaEventElapsedTime(profile)");
        Napi::Object call = Napi::Object::New(env);
        call.Set("name", record.name);
        call.Set("startMilliseconds", start);
        call.Set("milliseconds", milliseconds);
        calls.Set(calls.Length(), call);
      }
      Total& total = totals[record.name];
      total.count += 1;
      total.milliseconds += milliseconds;
      total.hostMilliseconds += record.hostMilliseconds;
      busy += milliseconds;
    }
    if (!profiler.records.empty()) {
      float milliseconds = 0.f;
      checkCuda(cudaEventElapsedTime(&milliseconds, profiler.records.front().start, profiler.records.back().end),
                "cudaEventElapsedTime(profile)");
      span = milliseconds;
    }
    profiler.recycle();
    Napi::Object result = Napi::Object::New(env);
    Napi::Array operations = Napi::Array::New(env, totals.size());
    uint32_t index = 0;
    for (const auto& [name, total] : totals) {
      Napi::Object operation = Napi::Object::New(env);
      operation.Set("name", name);
      operation.Set("count", total.count);
      operation.Set("milliseconds", total.milliseconds);
      operation.Set("hostMilliseconds", total.hostMilliseconds);
      operations.Set(index++, operation);
    }
    result.Set("operations", operations);
    result.Set("busyMilliseconds", busy);
    result.Set("spanMilliseconds", span);
    result.Set("calls", calls);
    return result;
  });
}

Napi::Value EventCreate(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    contextOf(info[0]);
    cudaEvent_t event = nullptr;
    checkCuda(cudaEventCreate(&event), "cudaEventCreate");
    return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(event)));
  });
}

Napi::Value EventRecord(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    checkCuda(cudaEventRecord(asPointer<cudaEvent_t>(info[1]), context.stream),
              "cudaEventRecord");
    return info.Env().Undefined();
  });
}

Napi::Value EventElapsedMs(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto start = asPointer<cudaEvent_t>(info[0]);
    auto end = asPointer<cudaEvent_t>(info[1]);
    checkCuda(cudaEventSynchronize(end), "cudaEventSynchronize");
    float milliseconds = 0.f;
    checkCuda(cudaEventElapsedTime(&milliseconds, start, end), "cudaEventElapsedTime");
    return Napi::Number::New(info.Env(), milliseconds);
  });
}

Napi::Value EventDestroy(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    checkCuda(cudaEventDestroy(asPointer<cudaEvent_t>(info[0])),
              "cudaEventDestroy");
    return info.Env().Undefined();
  });
}

Napi::Value EventSynchronize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    checkCuda(cudaEventSynchronize(asPointer<cudaEvent_t>(info[0])), "cudaEventSynchronize");
    return info.Env().Undefined();
  });
}

/**
 * Page-locked host memory as an ArrayBuffer (freed with cudaFreeHost when the buffer is collected):
 * where a captured graph's uploads read their data at every launch.
 */
Napi::Value HostAlloc(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    contextOf(info[0]);
    const size_t bytes = static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue());
    void* data = nullptr;
    checkCuda(cudaHostAlloc(&data, std::max<size_t>(bytes, 1), cudaHostAllocMapped), "cudaHostAlloc(graph inputs)");
    return Napi::ArrayBuffer::New(info.Env(), data, bytes, [](Napi::Env, void* memory) { cudaFreeHost(memory); });
  });
}

/**
 * An upload from page-locked memory of hostAlloc (a typed array over it) by a kernel that reads it
 * through its device mapping, instead of a copy-engine transfer: in a graph, a kernel node between
 * kernel nodes instead of a copy node.
 */
Napi::Value UploadMapped(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    auto* base = asPointer<unsigned char*>(info[1]);
    const size_t byteOffset = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
    Napi::TypedArray data = info[3].As<Napi::TypedArray>();
    unsigned char* host = static_cast<unsigned char*>(data.ArrayBuffer().Data()) + data.ByteOffset();
    void* mapped = nullptr;
    checkCuda(cudaHostGetDevicePointer(&mapped, host, 0), "cudaHostGetDevicePointer(upload)");
#ifdef FAIRKV_PROBE_ONLY
    (void)base, (void)byteOffset, (void)context;
    throw std::runtime_error("this addon is a probe-only build without kernels (scripts/build-native.mjs --probe-only)");
#else
    ProfiledOperation profiled(context, "upload");
    copyFromMappedHost(base + byteOffset, mapped, static_cast<long long>(data.ByteLength()), context.stream);
#endif
    return info.Env().Undefined();
  });
}

/**
 * Starts capturing the context's stream into a graph (thread-local mode: a call of this thread that
 * could synchronize the device, such as cudaMalloc, fails instead and invalidates the capture).
 */
Napi::Value GraphCaptureBegin(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    checkCuda(cudaStreamBeginCapture(context.stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    return info.Env().Undefined();
  });
}

/** Ends the capture and instantiates the graph; returns the executable graph as a bigint handle. */
Napi::Value GraphCaptureEnd(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    cudaGraph_t graph = nullptr;
    checkCuda(cudaStreamEndCapture(context.stream, &graph), "cudaStreamEndCapture");
    cudaGraphExec_t executable = nullptr;
    const cudaError_t instantiated = cudaGraphInstantiate(&executable, graph, 0);
    cudaGraphDestroy(graph);
    checkCuda(instantiated, "cudaGraphInstantiate");
    return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(executable)));
  });
}

/** Ends a capture that failed or was broken off, discarding what it recorded; never throws for that. */
Napi::Value GraphCaptureAbort(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    cudaStreamIsCapturing(context.stream, &status);
    if (status != cudaStreamCaptureStatusNone) {
      cudaGraph_t graph = nullptr;
      cudaStreamEndCapture(context.stream, &graph);
      if (graph != nullptr) cudaGraphDestroy(graph);
    }
    cudaGetLastError();  // the capture's error, if any, was reported where it happened
    return info.Env().Undefined();
  });
}

Napi::Value GraphLaunch(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    DeviceContext& context = contextOf(info[0]);
    checkCuda(cudaGraphLaunch(asPointer<cudaGraphExec_t>(info[1]), context.stream), "cudaGraphLaunch");
    return info.Env().Undefined();
  });
}

Napi::Value GraphDestroy(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    checkCuda(cudaGraphExecDestroy(asPointer<cudaGraphExec_t>(info[0])), "cudaGraphExecDestroy");
    return info.Env().Undefined();
  });
}

Napi::Value NcclUniqueId(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const std::vector<unsigned char> id = ncclGetUniqueIdBytes();
    Napi::Uint8Array result = Napi::Uint8Array::New(info.Env(), id.size());
    std::memcpy(result.Data(), id.data(), id.size());
    return result;
  });
}

Napi::Value NcclCreateGroup(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Array ids = info[0].As<Napi::Array>();
    std::vector<int> devices;
    for (uint32_t i = 0; i < ids.Length(); ++i) devices.push_back(contextOf(ids.Get(i)).device);
    const int id = nextGroupId++;
    ncclGroups[id] = std::make_unique<NcclGroup>(devices);
    return Napi::Number::New(info.Env(), id);
  });
}

/**
 * A rank's `ncclCommInitRank` under way on its own thread. The thread touches nothing of Node's (no
 * thread-safe function): a process may exit while it still waits in NCCL, and a call into a torn-down
 * environment from it would be undefined. The JavaScript thread polls it instead (ncclPollRank).
 */
struct PendingRank {
  std::mutex mutex;
  bool finished = false;
  NcclGroup* group = nullptr;  // owned here until the poll that registers it
  std::string error;
};
thread_local std::map<int, std::shared_ptr<PendingRank>> pendingRanks;
thread_local int nextPendingId = 1;

/**
 * Starts `ncclCommInitRank` (it blocks until every rank of the group joined) on a thread of its own and
 * returns the pending init's id for ncclPollRank / ncclAbandonRank.
 */
Napi::Value NcclStartRank(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
    std::vector<unsigned char> uniqueId(bytes.Data(), bytes.Data() + bytes.ElementLength());
    const int rankCount = info[1].As<Napi::Number>().Int32Value();
    const int rank = info[2].As<Napi::Number>().Int32Value();
    const int device = contextOf(info[3]).device;
    auto pending = std::make_shared<PendingRank>();
    std::thread([pending, uniqueId, rankCount, rank, device]() {
      NcclGroup* group = nullptr;
      std::string error;
      try {
        group = new NcclGroup(uniqueId, rankCount, rank, device);
      } catch (const std::exception& failure) {
        error = failure.what();
      }
      std::lock_guard<std::mutex> lock(pending->mutex);
      pending->group = group;
      pending->error = error;
      pending->finished = true;
    }).detach();
    const int id = nextPendingId++;
    pendingRanks[id] = pending;
    return Napi::Number::New(info.Env(), id);
  });
}

/**
 * A pending init's outcome: undefined while NCCL still waits; the NCCL group's id once it formed (the group
 * is registered on this thread, where collectives look it up); throws NCCL's error if it failed.
 */
Napi::Value NcclPollRank(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const int id = info[0].As<Napi::Number>().Int32Value();
    auto found = pendingRanks.find(id);
    if (found == pendingRanks.end()) throw std::invalid_argument("unknown pending NCCL rank " + std::to_string(id));
    std::shared_ptr<PendingRank> pending = found->second;
    std::lock_guard<std::mutex> lock(pending->mutex);
    if (!pending->finished) return info.Env().Undefined();
    pendingRanks.erase(found);
    if (pending->group == nullptr) throw std::runtime_error(pending->error);
    const int groupId = nextGroupId++;
    ncclGroups[groupId] = std::unique_ptr<NcclGroup>(pending->group);
    pending->group = nullptr;
    return Napi::Number::New(info.Env(), groupId);
  });
}

/**
 * Stops waiting for a pending init: NCCL's init cannot be cancelled, so its thread is left to the process,
 * and a group it still forms is left unregistered (its communicator to the process).
 */
Napi::Value NcclAbandonRank(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    pendingRanks.erase(info[0].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  });
}

Napi::Value NcclAllReduce(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const int groupId = info[0].As<Napi::Number>().Int32Value();
    auto found = ncclGroups.find(groupId);
    if (found == ncclGroups.end()) throw std::invalid_argument("unknown NCCL group " + std::to_string(groupId));
    Napi::Array contextIds = info[1].As<Napi::Array>();
    Napi::Array pointers = info[2].As<Napi::Array>();
    const size_t count = static_cast<size_t>(info[3].As<Napi::Number>().DoubleValue());
    const DType dtype = static_cast<DType>(info[4].As<Napi::Number>().Int32Value());
    std::vector<void*> buffers;
    std::vector<cudaStream_t> streams;
    std::vector<std::unique_ptr<ProfiledOperation>> profiled;
    for (uint32_t i = 0; i < contextIds.Length(); ++i) {
      DeviceContext& context = contextOf(contextIds.Get(i));
      streams.push_back(context.stream);
      buffers.push_back(asPointer<void*>(pointers.Get(i)));
      profiled.push_back(std::make_unique<ProfiledOperation>(context, "all-reduce"));
    }
    found->second->allReduceSum(buffers, streams, count, dtype);
    // NCCL switched devices: the end events are recorded on each context's own device.
    for (uint32_t i = 0; i < contextIds.Length(); ++i) {
      contextOf(contextIds.Get(i));
      profiled[i].reset();
    }
    return info.Env().Undefined();
  });
}

/**
 * Aborts this process's ranks of the group with the given unique id (see ncclAbortRanks) on a thread of
 * its own: neither this JavaScript thread nor libuv's pool (where the ranks' downloads may be waiting
 * for the aborted collectives) waits for it. Resolves to the number of communicators aborted.
 */
Napi::Value NcclAbortRanks(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
    std::vector<unsigned char> uniqueId(bytes.Data(), bytes.Data() + bytes.ElementLength());
    auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
    auto done = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                              "fairkv.ncclAbortRanks", 0, 1);
    std::thread([done, uniqueId, deferred]() mutable {
      int count = 0;
      std::string error;
      try {
        count = ncclAbortRanks(uniqueId);
      } catch (const std::exception& failure) {
        error = failure.what();
      }
      done.BlockingCall([deferred, count, error](Napi::Env env, Napi::Function) {
        if (error.empty()) deferred->Resolve(Napi::Number::New(env, count));
        else deferred->Reject(Napi::Error::New(env, error).Value());
      });
      done.Release();
    }).detach();
    return deferred->Promise();
  });
}

Napi::Value NcclDestroyGroup(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto found = ncclGroups.find(info[0].As<Napi::Number>().Int32Value());
    if (found == ncclGroups.end()) return info.Env().Undefined();
    found->second->destroy(info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value());
    ncclGroups.erase(found);
    return info.Env().Undefined();
  });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, Probe));
  exports.Set("deviceProperties", Napi::Function::New(env, DeviceProperties));
  exports.Set("libraryInfo", Napi::Function::New(env, LibraryInfo));
  exports.Set("createContext", Napi::Function::New(env, CreateContext));
  exports.Set("destroyContext", Napi::Function::New(env, DestroyContext));
  exports.Set("memoryInfo", Napi::Function::New(env, MemoryInfo));
  exports.Set("allocate", Napi::Function::New(env, Allocate));
  exports.Set("release", Napi::Function::New(env, Release));
  exports.Set("upload", Napi::Function::New(env, Upload));
  exports.Set("download", Napi::Function::New(env, Download));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize));
  exports.Set("synchronizeNow", Napi::Function::New(env, SynchronizeNow));
  exports.Set("fill", Napi::Function::New(env, Fill));
  exports.Set("copy", Napi::Function::New(env, Copy));
  exports.Set("run", Napi::Function::New(env, Run));
  exports.Set("profileStart", Napi::Function::New(env, ProfileStart));
  exports.Set("profileStop", Napi::Function::New(env, ProfileStop));
  exports.Set("eventCreate", Napi::Function::New(env, EventCreate));
  exports.Set("eventRecord", Napi::Function::New(env, EventRecord));
  exports.Set("eventElapsedMs", Napi::Function::New(env, EventElapsedMs));
  exports.Set("eventDestroy", Napi::Function::New(env, EventDestroy));
  exports.Set("eventSynchronize", Napi::Function::New(env, EventSynchronize));
  exports.Set("hostAlloc", Napi::Function::New(env, HostAlloc));
  exports.Set("uploadMapped", Napi::Function::New(env, UploadMapped));
  exports.Set("graphCaptureBegin", Napi::Function::New(env, GraphCaptureBegin));
  exports.Set("graphCaptureEnd", Napi::Function::New(env, GraphCaptureEnd));
  exports.Set("graphCaptureAbort", Napi::Function::New(env, GraphCaptureAbort));
  exports.Set("graphLaunch", Napi::Function::New(env, GraphLaunch));
  exports.Set("graphDestroy", Napi::Function::New(env, GraphDestroy));
  exports.Set("ncclUniqueId", Napi::Function::New(env, NcclUniqueId));
  exports.Set("ncclCreateGroup", Napi::Function::New(env, NcclCreateGroup));
  exports.Set("ncclStartRank", Napi::Function::New(env, NcclStartRank));
  exports.Set("ncclPollRank", Napi::Function::New(env, NcclPollRank));
  exports.Set("ncclAbandonRank", Napi::Function::New(env, NcclAbandonRank));
  exports.Set("ncclAllReduce", Napi::Function::New(env, NcclAllReduce));
  exports.Set("ncclDestroyGroup", Napi::Function::New(env, NcclDestroyGroup));
  exports.Set("ncclAbortRanks", Napi::Function::New(env, NcclAbortRanks));
  return exports;
}

}  // namespace
}  // namespace fairkv

static Napi::Object InitFairkvCuda(Napi::Env env, Napi::Object exports) { return fairkv::Init(env, exports); }

NODE_API_MODULE(fairkv_cuda, InitFairkvCuda)
