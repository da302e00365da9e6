// ReLU: y = max(x, 0), any shape. Gradient: dx = dy where x > 0, else 0, so the gradient at
// exactly x = 0 is 0 (PyTorch's choice, torch.relu / torch.nn.functional.relu). NaN inputs give
// NaN outputs, as in PyTorch.
//
// The backward pass uses the output y rather than x (y > 0 exactly where x > 0), so the closure
// keeps only y.
//
// Speed: memory bound (src/cpu/elementwise.hpp): forward 8 bytes per float, backward 12; the
// select compiles to a vector compare and blend.
//
// On a GPU (float32): implementation("relu") picks cuDNN's activation (src/cuda/
// cudnn_activation.cu, the default; our kernel runs if cuDNN declines) or cudagrad's kernel
// (kernels/elementwise.cu). Both read 4 and write 4 bytes per element forward, 12 backward:
// ~0.27 ms forward for a 128x256x56x56 activation at ~3 TB/s.
#include "cpu/elementwise.hpp"
#include "cudagrad/ops.hpp"
#include "cudagrad/registry.hpp"
#include "ops/op_support.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/cudnn_activation.hpp"
#include "cuda/elementwise.hpp"
#include "registry_internal.hpp"
#endif

namespace cudagrad {
namespace {

// y = relu(x) for contiguous float32 tensors on the current GPU.
void relu_forward_gpu(const Tensor& input, Tensor& output) {
#ifdef CUDAGRAD_WITH_CUDA
    const float* x = input.data<float>();
    float* y = output.data<float>();
    const std::int64_t count = input.numel();
    auto ours = [&] { cuda::relu_forward(x, y, count); };
    if (implementation("relu") == "cudnn") {
        detail::run_with_fallback("relu", [&] { cuda::cudnn_relu_forward(x, y, input.shape()); }, ours);
    } else {
        ours();
    }
#else
    (void)input;
    (void)output;
    detail::fail_without_cuda("relu");
#endif
}

// dx = dy where y > 0, else 0, for contiguous float32 tensors on the current GPU.
void relu_backward_gpu(const Tensor& output, const Tensor& output_gradient, Tensor& input_gradient) {
#ifdef CUDAGRAD_WITH_CUDA
    const float* y = output.data<float>();
    const float* dy = output_gradient.data<float>();
    float* dx = input_gradient.data<float>();
    const std::int64_t count = output.numel();
    auto ours = [&] { cuda::relu_backward(y, dy, dx, count); };
    if (implementation("relu") == "cudnn") {
        detail::run_with_fallback("relu backward", [&] { cuda::cudnn_relu_backward(y, dy, dx, output.shape()); },
                                  ours);
    } else {
        ours();
    }
#else
    (void)output;
    (void)output_gradient;
    (void)input_gradient;
    detail::fail_without_cuda("relu backward");
#endif
}

}  // namespace

Tensor relu(const Tensor& x) {
    detail::check_input(x, "relu", "input");
    Tensor input = x.contiguous();
    Tensor output = Tensor::empty(x.shape(), x.dtype(), x.device());
    if (x.device().is_cuda()) {
        relu_forward_gpu(input, output);
    } else {
        detail::dispatch_floating(x.dtype(), "relu", [&](auto zero) {
            using T = decltype(zero);
            cpu::relu_forward(input.data<T>(), output.data<T>(), input.numel());
        });
    }
    // Capture a detached handle on the output: capturing `output` itself would be a cycle.
    record_op(output, "relu", {x}, [saved_output = output.detach()](const Tensor& gradient) {
        Tensor g = gradient.contiguous();
        Tensor input_gradient = Tensor::empty(saved_output.shape(), saved_output.dtype(), saved_output.device());
        if (saved_output.device().is_cuda()) {
            detail::check_same_kind(saved_output, g, "relu backward", "output", "gradient");
            make_device_current(saved_output.device());
            relu_backward_gpu(saved_output, g, input_gradient);
            return std::vector<Tensor>{input_gradient};
        }
        detail::dispatch_floating(saved_output.dtype(), "relu backward", [&](auto zero) {
            using T = decltype(zero);
            cpu::relu_backward(saved_output.data<T>(), g.data<T>(), input_gradient.data<T>(), saved_output.numel());
        });
        return std::vector<Tensor>{input_gradient};
    });
    return output;
}

}  // namespace cudagrad
