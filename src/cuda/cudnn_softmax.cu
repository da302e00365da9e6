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

#include <climits>
#include <cstdint>
#include <string>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/cudnn_softmax.hpp"

namespace cudagrad::cuda {
namespace {

// A float32 NCHW tensor descriptor (outer, extent, inner, 1), destroyed with its owner even
// when a later call throws.
class SoftmaxDescriptor {
public:
    explicit SoftmaxDescriptor(const SoftmaxShape& shape) {
        // The legacy API limits each size, and the whole tensor, to 2^31 - 1 elements.
        const std::int64_t sizes[] = {shape.outer, shape.extent, shape.inner};
        bool fits = true;
        for (std::int64_t size : sizes) fits = fits && size > 0 && size <= INT_MAX;
        if (!fits || shape.outer * shape.extent > INT_MAX / shape.inner) {
            throw detail::VendorDeclined("cuDNN tensor sizes are int, got (outer, extent, inner) = (" +
                                         std::to_string(shape.outer) + ", " + std::to_string(shape.extent) + ", " +
                                         std::to_string(shape.inner) + ")");
        }
        CUDAGRAD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&descriptor_));
        try {
            CUDAGRAD_CUDNN_CHECK(cudnnSetTensor4dDescriptor(descriptor_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                            static_cast<int>(shape.outer),
                                                            static_cast<int>(shape.extent),
                                                            static_cast<int>(shape.inner), 1));
        } catch (...) {
            cudnnDestroyTensorDescriptor(descriptor_);
            throw;
        }
    }
    ~SoftmaxDescriptor() { cudnnDestroyTensorDescriptor(descriptor_); }
    SoftmaxDescriptor(const SoftmaxDescriptor&) = delete;
    SoftmaxDescriptor& operator=(const SoftmaxDescriptor&) = delete;
    cudnnTensorDescriptor_t get() const { return descriptor_; }

private:
    cudnnTensorDescriptor_t descriptor_ = nullptr;
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
