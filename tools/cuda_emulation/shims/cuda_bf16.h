// CPU stand-in for <cuda_bf16.h> (tools/cuda_emulation): bfloat16 as its 16 raw bits, with the
// same round-to-nearest-even conversion the GPU uses.
#pragma once
#include <cstdint>

#include "cuda_runtime.h"

struct __nv_bfloat16 { unsigned short bits; };
struct __nv_bfloat162 { __nv_bfloat16 x, y; };  // x in the low 16 bits, as on the GPU
inline __nv_bfloat16 __float2bfloat16_rn(float value) {
    if (std::isnan(value)) return {0x7FC0};
    const std::uint32_t bits = __float_as_uint(value);
    return {static_cast<unsigned short>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 value) { return __uint_as_float(static_cast<std::uint32_t>(value.bits) << 16); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 value) { return value.bits; }
inline __nv_bfloat162 __floats2bfloat162_rn(float low, float high) {
    return {__float2bfloat16_rn(low), __float2bfloat16_rn(high)};
}
