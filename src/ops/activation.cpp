// ReLU: y = max(x, 0), any shape. Gradient: dx = dy where x > 0, else 0, so the gradient at
// exactly x = 0 is 0 (PyTorch's choice, torch.relu / torch.nn.functional.relu). NaN inputs give
// NaN outputs, as in PyTorch.
//
// The backward pass uses the output y rather than x (y > 0 exactly where x > 0), so the closure
// keeps only y.
//
// Speed: memory bound (src/cpu/elementwise.hpp): forward 8 bytes per float, backward 12; the
// select compiles to a vector compare and blend.
#include "cpu/elementwise.hpp"
#include "cudagrad/ops.hpp"
#include "ops/op_support.hpp"

namespace cudagrad {

Tensor relu(const Tensor& x) {
    detail::check_input(x, "relu", "input");
    Tensor input = x.contiguous();
    Tensor output = Tensor::empty(x.shape(), x.dtype(), x.device());
    detail::dispatch_floating(x.dtype(), "relu", [&](auto zero) {
        using T = decltype(zero);
        cpu::relu_forward(input.data<T>(), output.data<T>(), input.numel());
    });
    // Capture a detached handle on the output: capturing `output` itself would be a cycle.
    record_op(output, "relu", {x}, [saved_output = output.detach()](const Tensor& gradient) {
        Tensor g = gradient.contiguous();
        Tensor input_gradient = Tensor::empty(saved_output.shape(), saved_output.dtype(), saved_output.device());
        detail::dispatch_floating(saved_output.dtype(), "relu backward", [&](auto zero) {
            using T = decltype(zero);
            cpu::relu_backward(saved_output.data<T>(), g.data<T>(), input_gradient.data<T>(), saved_output.numel());
        });
        return std::vector<Tensor>{input_gradient};
    });
    return output;
}

}  // namespace cudagrad
