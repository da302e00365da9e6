// ReLU through cuDNN (src/cuda/cudnn_activation.cu), the vendor twin of kernels/elementwise.cu's
// relu_forward / relu_backward. CUDA-free, so src/ops/activation.cpp (plain C++) can call it.
// Contiguous float32 device arrays of `shape` (any number of dimensions, any count), on the
// current device's stream. Throws detail::VendorDeclined when cuDNN declines a configuration
// (CUDNN_STATUS_NOT_SUPPORTED) or an array does not start on a 16-byte boundary; the op then
// runs cudagrad's kernel instead.
#pragma once

#include <cstdint>
#include <vector>

namespace cudagrad::cuda {

// y = max(x, 0); a NaN passes through (CUDNN_PROPAGATE_NAN), as the CPU op.
void cudnn_relu_forward(const float* x, float* y, const std::vector<std::int64_t>& shape);

// dx = dy where y > 0, else 0. cuDNN's backward takes (y, dy, x); cudagrad keeps only the
// forward output, so y is passed for x too: for ReLU, y > 0 exactly where x > 0, and where
// x <= 0 both are <= 0, so the result is the same (the gradient at exactly 0 is 0).
void cudnn_relu_backward(const float* y, const float* output_gradient, float* input_gradient,
                         const std::vector<std::int64_t>& shape);

}  // namespace cudagrad::cuda
