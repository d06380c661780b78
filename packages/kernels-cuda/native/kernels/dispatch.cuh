// Runs a templated functor with the C++ type of a stored dtype (f32, f16, bf16).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <stdexcept>

#include "../common.h"

namespace fairkv {

template <typename Functor>
void withStoredType(DType dtype, Functor&& functor) {
  switch (dtype) {
    case DType::F32: functor(static_cast<float*>(nullptr)); break;
    case DType::F16: functor(static_cast<__half*>(nullptr)); break;
    case DType::BF16: functor(static_cast<__nv_bfloat16*>(nullptr)); break;
    default: throw std::invalid_argument("expected a stored dtype (f32, f16 or bf16)");
  }
}

}  // namespace fairkv
