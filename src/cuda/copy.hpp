// Copies, conversions and fills of device tensors of any layout and dtype (kernels/copy.cu).
// CUDA-free, so tensor.cpp can call it.
#pragma once

#include <cstdint>

#include "cudagrad/dtype.hpp"

namespace cudagrad::cuda {

constexpr int max_copy_dims = 8;

// One strided view of device memory: element i0..i(d-1) lives at
// data + sum(i_k * strides[k]) elements of `dtype`.
struct StridedView {
    void* data = nullptr;  // the view's first element (storage start + offset)
    DType dtype = DType::Float32;
    int dims = 0;
    std::int64_t shape[max_copy_dims] = {};
    std::int64_t strides[max_copy_dims] = {};
};

// destination[i] = convert(source[i]) for every index of the (shared) shape. Both views on the
// current device. Throws for more than max_copy_dims dimensions.
void strided_copy(const StridedView& destination, const StridedView& source);

// Sets every element of a strided view to `value` (converted to its dtype).
void strided_fill(const StridedView& destination, double value);

}  // namespace cudagrad::cuda
