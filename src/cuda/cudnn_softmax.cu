// Softmax and log-softmax with cuDNN's legacy API: cudnnSoftmaxForward / cudnnSoftmaxBackward.
//
// The (outer, extent, inner) view of the tensor maps onto cuDNN's NCHW descriptor as
// (N, C, H, W) = (outer, extent, inner, 1), and CUDNN_SOFTMAX_MODE_CHANNEL normalises over C for
// each (n, h, w): exactly softmax over our `extent` axis, for any dimension of a contiguous
// tensor. Algorithms: CUDNN_SOFTMAX_ACCURATE subtracts the maximum (as our kernels and the CPU
// do); CUDNN_SOFTMAX_LOG computes log-softmax, and its backward takes the log-softmax output:
//   dx = dy - exp(y) * sum dy     (CPU: src/cpu/loss.cpp, log_softmax_backward)
// and for ACCURATE: dx = y * (dy - sum dy*y). alpha = 1, beta = 0 (overwrite the output).
// cuDNN's descriptor sizes are int: a dimension or tensor beyond INT_MAX elements is declined
// (VendorDeclined), which makes the op run cudagrad's kernel.
#include <cudnn.h>

#include <array>
#include <climits>
#include <cstdint>
#include <string>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/cudnn_descriptors.hpp"
#include "cuda/cudnn_softmax.hpp"

namespace cudagrad::cuda {
namespace {

// The legacy API limits each size, and the whole tensor, to 2^31 - 1 elements: (outer, extent,
// inner) as ints, or declined. (outer * extent * inner could overflow int64, so the bound divides.)
std::array<int, 3> checked_sizes(const SoftmaxShape& shape) {
    const std::int64_t sizes[] = {shape.outer, shape.extent, shape.inner};
    bool fits = true;
    for (std::int64_t size : sizes) fits = fits && size > 0 && fits_int(size);
    if (!fits || shape.outer * shape.extent > INT_MAX / shape.inner) {
        throw detail::VendorDeclined("cuDNN tensor sizes are int, got (outer, extent, inner) = (" +
                                     std::to_string(shape.outer) + ", " + std::to_string(shape.extent) + ", " +
                                     std::to_string(shape.inner) + ")");
    }
    return {static_cast<int>(shape.outer), static_cast<int>(shape.extent), static_cast<int>(shape.inner)};
}

// A float32 NCHW tensor descriptor (outer, extent, inner, 1); the sizes are checked before the
// descriptor is created (members initialise in declaration order).
class SoftmaxDescriptor {
public:
    explicit SoftmaxDescriptor(const SoftmaxShape& shape) : sizes_(checked_sizes(shape)) {
        set_nchw(tensor_, sizes_[0], sizes_[1], sizes_[2], 1);
    }
    cudnnTensorDescriptor_t get() const { return tensor_.get(); }

private:
    std::array<int, 3> sizes_;
    TensorDescriptor tensor_;
};

cudnnSoftmaxAlgorithm_t algorithm_for(bool logarithm) {
    return logarithm ? CUDNN_SOFTMAX_LOG : CUDNN_SOFTMAX_ACCURATE;
}

}  // namespace

void cudnn_softmax_forward(const float* x, float* y, const SoftmaxShape& shape, bool logarithm) {
    const SoftmaxDescriptor descriptor(shape);
    const float alpha = 1.0f, beta = 0.0f;
    CUDAGRAD_CUDNN_CHECK(cudnnSoftmaxForward(current_context().cudnn, algorithm_for(logarithm),
                                             CUDNN_SOFTMAX_MODE_CHANNEL, &alpha, descriptor.get(), x, &beta,
                                             descriptor.get(), y));
}

void cudnn_softmax_backward(const float* y, const float* y_gradient, float* x_gradient, const SoftmaxShape& shape,
                            bool logarithm) {
    const SoftmaxDescriptor descriptor(shape);
    const float alpha = 1.0f, beta = 0.0f;
    CUDAGRAD_CUDNN_CHECK(cudnnSoftmaxBackward(current_context().cudnn, algorithm_for(logarithm),
                                              CUDNN_SOFTMAX_MODE_CHANNEL, &alpha, descriptor.get(), y,
                                              descriptor.get(), y_gradient, &beta, descriptor.get(), x_gradient));
}

}  // namespace cudagrad::cuda
