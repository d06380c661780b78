// Run-time loading of shared libraries (cuBLAS, NCCL) with dlopen, so the addon itself links only
// the static CUDA runtime and loads on any machine, GPU or not; a missing library is reported as a
// reason, never a load failure.
#pragma once

#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace fairkv {

/** Opens the first loadable candidate (an environment override first); returns null and a reason otherwise. */
inline void* openFirst(const char* overrideVariable, const std::vector<std::string>& candidates, std::string& path,
                       std::string& error) {
  std::vector<std::string> tried;
  const char* override = std::getenv(overrideVariable);
  if (override != nullptr && override[0] != '\0') tried.push_back(override);
  for (const auto& candidate : candidates) tried.push_back(candidate);
  std::string reasons;
  for (const auto& candidate : tried) {
    void* handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) {
      path = candidate;
      return handle;
    }
    const char* message = dlerror();
    reasons += (reasons.empty() ? "" : "; ") + std::string(message != nullptr ? message : candidate);
  }
  error = reasons;
  return nullptr;
}

template <typename Function>
bool loadSymbol(void* handle, const char* name, Function& target, std::string& error) {
  target = reinterpret_cast<Function>(dlsym(handle, name));
  if (target == nullptr) {
    error = std::string("symbol ") + name + " not found";
    return false;
  }
  return true;
}

}  // namespace fairkv
