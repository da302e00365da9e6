// Max and average pooling by cuDNN (legacy API), the vendor counterpart of kernels/pooling.cu.
// See cudnn_pooling.hpp for the contract.
//
//   max_pool2d: CUDNN_POOLING_MAX_DETERMINISTIC (the backward's result does not depend on thread
//               scheduling), CUDNN_PROPAGATE_NAN (a NaN in the window gives NaN, as PyTorch).
//   avg_pool2d: CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING when count_include_pad, else
//               _EXCLUDE_PADDING. With PyTorch's geometry (ceil_mode=False, padding <= kernel/2)
//               no window reaches past input + padding, so "include padding" divides by the kernel
//               area everywhere, as the CPU does.
// The output size cuDNN computes is checked against ours; a mismatch is declined (the op then
// runs our kernel) rather than trusted.
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdint>
#include <string>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/cudnn_descriptors.hpp"
#include "cuda/cudnn_pooling.hpp"

namespace cudagrad::cuda {
namespace {

int as_int(std::int64_t value, const char* what) {
    return int_or_decline(value, [&] {
        return std::string("pooling (cuDNN): ") + what + " " + std::to_string(value) +
               " is too large for cuDNN's int descriptors";
    });
}

void set_4d(const TensorDescriptor& descriptor, std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w) {
    as_int(n * c * h * w, "tensor size");
    set_nchw(descriptor, as_int(n, "batch"), as_int(c, "channels"), as_int(h, "height"), as_int(w, "width"));
}

// The descriptors of one pooling call, checked against our output size.
struct Pooling {
    TensorDescriptor input;   // x, dx
    TensorDescriptor output;  // y, dy
    PoolingDescriptor pooling;
    Pooling(const PoolGeometry& g, cudnnPoolingMode_t mode) {
        set_4d(input, g.batch, g.channels, g.input_h, g.input_w);
        set_4d(output, g.batch, g.channels, g.output_h, g.output_w);
        CUDAGRAD_CUDNN_CHECK(cudnnSetPooling2dDescriptor(
            pooling.get(), mode, CUDNN_PROPAGATE_NAN, as_int(g.kernel_h, "kernel"), as_int(g.kernel_w, "kernel"),
            as_int(g.padding_h, "padding"), as_int(g.padding_w, "padding"), as_int(g.stride_h, "stride"),
            as_int(g.stride_w, "stride")));
        int n = 0, c = 0, h = 0, w = 0;
        CUDAGRAD_CUDNN_CHECK(cudnnGetPooling2dForwardOutputDim(pooling.get(), input.get(), &n, &c, &h, &w));
        if (n != g.batch || c != g.channels || h != g.output_h || w != g.output_w) {
            throw detail::VendorDeclined("pooling (cuDNN): cuDNN's output size " + std::to_string(h) + "x" +
                                         std::to_string(w) + " differs from " + std::to_string(g.output_h) + "x" +
                                         std::to_string(g.output_w));
        }
    }
};

cudnnPoolingMode_t average_mode(bool count_include_pad) {
    return count_include_pad ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
}

void forward(const float* x, float* y, const PoolGeometry& g, cudnnPoolingMode_t mode) {
    const Pooling call(g, mode);
    const float one = 1.0f, zero = 0.0f;
    CUDAGRAD_CUDNN_CHECK(cudnnPoolingForward(current_context().cudnn, call.pooling.get(), &one, call.input.get(), x,
                                             &zero, call.output.get(), y));
}

void backward(const float* x, const float* y, const float* dy, float* dx, const PoolGeometry& g,
              cudnnPoolingMode_t mode) {
    const Pooling call(g, mode);
    const float one = 1.0f, zero = 0.0f;
    CUDAGRAD_CUDNN_CHECK(cudnnPoolingBackward(current_context().cudnn, call.pooling.get(), &one, call.output.get(), y,
                                              call.output.get(), dy, call.input.get(), x, &zero, call.input.get(),
                                              dx));
}

}  // namespace

void cudnn_max_pool2d_forward(const float* x, float* y, const PoolGeometry& g) {
    forward(x, y, g, CUDNN_POOLING_MAX_DETERMINISTIC);
}

void cudnn_max_pool2d_backward(const float* x, const float* y, const float* dy, float* dx, const PoolGeometry& g) {
    backward(x, y, dy, dx, g, CUDNN_POOLING_MAX_DETERMINISTIC);
}

void cudnn_avg_pool2d_forward(const float* x, float* y, const PoolGeometry& g, bool count_include_pad) {
    forward(x, y, g, average_mode(count_include_pad));
}

void cudnn_avg_pool2d_backward(const float* x, const float* y, const float* dy, float* dx, const PoolGeometry& g,
                               bool count_include_pad) {
    backward(x, y, dy, dx, g, average_mode(count_include_pad));
}

}  // namespace cudagrad::cuda
