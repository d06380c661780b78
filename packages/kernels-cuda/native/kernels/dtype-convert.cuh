// Conversions between stored dtypes (f32, IEEE half, bfloat16) and the f32 the kernels compute in,
// including 16-byte vector unpacking for bandwidth-bound kernels.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace fairkv {

template <typename T>
__device__ __forceinline__ float toFloat(T value);
template <>
__device__ __forceinline__ float toFloat<float>(float value) { return value; }
template <>
__device__ __forceinline__ float toFloat<__half>(__half value) { return __half2float(value); }
template <>
__device__ __forceinline__ float toFloat<__nv_bfloat16>(__nv_bfloat16 value) { return __bfloat162float(value); }

/** Round-to-nearest-even conversion from f32 to a stored dtype. */
template <typename T>
__device__ __forceinline__ T fromFloat(float value);
template <>
__device__ __forceinline__ float fromFloat<float>(float value) { return value; }
template <>
__device__ __forceinline__ __half fromFloat<__half>(float value) { return __float2half_rn(value); }
template <>
__device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float value) { return __float2bfloat16_rn(value); }

/** Two f32 rounded to T (f16 or bf16) in one 32-bit word, `x` in the low half. */
template <typename T>
__device__ __forceinline__ unsigned int packPair(float x, float y) {
  T pair[2] = {fromFloat<T>(x), fromFloat<T>(y)};
  return *reinterpret_cast<const unsigned int*>(pair);
}

/** Elements of T in one 16-byte vector. */
template <typename T>
struct VectorWidth {
  static constexpr int value = 16 / static_cast<int>(sizeof(T));
};

/** Unpacks one 16-byte vector of T into VectorWidth<T> floats at `out`. */
template <typename T>
__device__ __forceinline__ void unpack16(const uint4& raw, float* out);
template <>
__device__ __forceinline__ void unpack16<float>(const uint4& raw, float* out) {
  out[0] = __uint_as_float(raw.x);
  out[1] = __uint_as_float(raw.y);
  out[2] = __uint_as_float(raw.z);
  out[3] = __uint_as_float(raw.w);
}
template <>
__device__ __forceinline__ void unpack16<__nv_bfloat16>(const uint4& raw, float* out) {
  const unsigned int words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[2 * i] = __uint_as_float(words[i] << 16);
    out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
  }
}
template <>
__device__ __forceinline__ void unpack16<__half>(const uint4& raw, float* out) {
  const unsigned int words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    __half2 pair = *reinterpret_cast<const __half2*>(&words[i]);
    float2 widened = __half22float2(pair);
    out[2 * i] = widened.x;
    out[2 * i + 1] = widened.y;
  }
}

}  // namespace fairkv
