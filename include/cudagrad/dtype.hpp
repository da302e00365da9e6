// Element types. float32 is what models train in; float64 exists so the finite-difference
// gradient checks can run every op in double precision; int64 holds class labels.
// Half types (bf16, fp16) will be added as further enumerators: code that switches on DType
// must fail loudly on a type it does not handle (see dispatch_floating in ops_support.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace cudagrad {

enum class DType { Float32, Float64, Int64 };

constexpr std::size_t element_size(DType dtype) {
    switch (dtype) {
        case DType::Float32: return 4;
        case DType::Float64: return 8;
        case DType::Int64: return 8;
    }
    return 0;
}

constexpr const char* dtype_name(DType dtype) {
    switch (dtype) {
        case DType::Float32: return "float32";
        case DType::Float64: return "float64";
        case DType::Int64: return "int64";
    }
    return "unknown";
}

constexpr bool is_floating(DType dtype) { return dtype == DType::Float32 || dtype == DType::Float64; }

// The DType of a C++ element type, for typed accessors such as Tensor::data<T>().
template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::Int64; }

}  // namespace cudagrad
