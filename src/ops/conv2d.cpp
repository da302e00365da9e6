// conv2d: 2-D convolution (cross-correlation, as PyTorch's torch.nn.functional.conv2d).
//
//   x: (N, C, H, W), weight: (K, C/groups, R, S), bias: (K) or undefined  ->  y: (N, K, P, Q)
//   P = (H + 2*padding_h - dilation_h*(R-1) - 1) / stride_h + 1, Q likewise from W and S
//   y[n, k, p, q] = bias[k] + sum over c, r, s of weight[k, c, r, s] *
//                   x[n, group(k)*C/groups + c, p*stride_h - padding_h + r*dilation_h,
//                                               q*stride_w - padding_w + s*dilation_w]
// Backward (the formulas are in src/cpu/conv2d.hpp): dx is the "transposed convolution" of dy
// with the weight, dweight correlates x with dy, dbias sums dy over (N, P, Q).
// Must match PyTorch's forward and autograd, including groups and dilation.
//
// This file validates and dispatches; the arithmetic lives in src/cpu/conv2d.cpp (im2col +
// GEMM, or the direct reference loops under CUDAGRAD_CONV=reference) and, for GPU tensors, in
// src/ops/conv2d_cuda.cpp (cuDNN or cudagrad's kernels, per implementation("conv2d")). What
// limits speed is therefore the GEMM: about 2*N*K*P*Q*(C/groups)*R*S FLOPs for each of forward,
// dx and dweight.
#include <string>

#include "cpu/conv2d.hpp"
#include "cudagrad/ops.hpp"
#include "ops/op_support.hpp"
#ifdef CUDAGRAD_WITH_CUDA
#include "ops/conv2d_cuda.hpp"
#endif

namespace cudagrad {
namespace {

constexpr const char* kOp = "conv2d";

// All shapes in one string, for error messages: "(input [2, 3, 8, 8], weight [16, 4, 3, 3])".
std::string shapes_of(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    std::string text = "(input " + shape_string(x.shape()) + ", weight " + shape_string(weight.shape());
    if (bias.defined()) text += ", bias " + shape_string(bias.shape());
    return text + ")";
}

// Checks every input and option, and returns the sizes the CPU kernels need.
cpu::ConvGeometry validate(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options) {
    detail::check_input(x, kOp, "input");
    detail::check_input(weight, kOp, "weight");
    detail::check_dim(x, 4, kOp, "input (N, C, H, W)");
    detail::check_dim(weight, 4, kOp, "weight (K, C/groups, R, S)");
    detail::check_same_kind(x, weight, kOp, "input", "weight");
    const std::string shapes = shapes_of(x, weight, bias);
    if (bias.defined()) {
        detail::check_input(bias, kOp, "bias");
        detail::check_same_kind(x, bias, kOp, "input", "bias");
        check(bias.dim() == 1 && bias.size(0) == weight.size(0), kOp, "bias must have shape [", weight.size(0),
              "] (one value per output channel) ", shapes);
    }
    check(options.stride_h >= 1 && options.stride_w >= 1, kOp, "stride must be >= 1, got (", options.stride_h, ", ",
          options.stride_w, ") ", shapes);
    check(options.dilation_h >= 1 && options.dilation_w >= 1, kOp, "dilation must be >= 1, got (",
          options.dilation_h, ", ", options.dilation_w, ") ", shapes);
    check(options.padding_h >= 0 && options.padding_w >= 0, kOp, "padding must be >= 0, got (", options.padding_h,
          ", ", options.padding_w, ") ", shapes);
    check(options.groups >= 1, kOp, "groups must be >= 1, got ", options.groups, " ", shapes);

    cpu::ConvGeometry g;
    g.batch = x.size(0);
    g.in_channels = x.size(1);
    g.in_height = x.size(2);
    g.in_width = x.size(3);
    g.out_channels = weight.size(0);
    g.kernel_height = weight.size(2);
    g.kernel_width = weight.size(3);
    g.stride_height = options.stride_h;
    g.stride_width = options.stride_w;
    g.padding_height = options.padding_h;
    g.padding_width = options.padding_w;
    g.dilation_height = options.dilation_h;
    g.dilation_width = options.dilation_w;
    g.groups = options.groups;

    check(g.in_channels % g.groups == 0, kOp, "groups=", g.groups, " does not divide the ", g.in_channels,
          " input channels ", shapes);
    check(g.out_channels % g.groups == 0, kOp, "groups=", g.groups, " does not divide the ", g.out_channels,
          " output channels (weight.size(0)) ", shapes);
    check(weight.size(1) * g.groups == g.in_channels, kOp, "input has ", g.in_channels,
          " channels but weight expects ", weight.size(1) * g.groups, " (weight.size(1)=", weight.size(1),
          " x groups=", g.groups, ") ", shapes);

    g.out_height = cpu::conv_output_size(g.in_height, g.kernel_height, g.stride_height, g.padding_height,
                                         g.dilation_height);
    g.out_width =
        cpu::conv_output_size(g.in_width, g.kernel_width, g.stride_width, g.padding_width, g.dilation_width);
    check(g.out_height >= 1 && g.out_width >= 1, kOp, "the kernel (", g.kernel_height, "x", g.kernel_width,
          ", dilation ", g.dilation_height, "x", g.dilation_width, ") is larger than the padded input (",
          g.in_height + 2 * g.padding_height, "x", g.in_width + 2 * g.padding_width, "): output would be ",
          g.out_height, "x", g.out_width, " ", shapes);
    return g;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options) {
    const cpu::ConvGeometry geometry = validate(x, weight, bias, options);
    // The kernels index raw memory, so inputs must be contiguous; contiguous() is free when they are.
    const Tensor input = x.contiguous();
    const Tensor kernel = weight.contiguous();
    const Tensor offset = bias.defined() ? bias.contiguous() : Tensor();
    Tensor output;
    if (x.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
        output = detail::conv2d_forward_cuda(geometry, input, kernel, offset);
#else
        detail::fail_without_cuda(kOp);
#endif
    } else {
        output = Tensor::empty({geometry.batch, geometry.out_channels, geometry.out_height, geometry.out_width},
                               x.dtype(), x.device());
        detail::dispatch_floating(x.dtype(), kOp, [&](auto zero) {
            using T = decltype(zero);
            const T* bias_data = offset.defined() ? offset.data<T>() : nullptr;
            cpu::conv2d_forward<T>(geometry, input.data<T>(), kernel.data<T>(), bias_data, output.data<T>());
        });
    }

    // Which gradients are wanted is decided now, as PyTorch does, so the closure keeps alive
    // only what they need: the weight for dx, the input for dweight (and dbias, which the same
    // pass computes).
    const bool need_input = x.requires_grad(), need_weight = weight.requires_grad();
    const bool need_bias = bias.defined() && bias.requires_grad();
    const Tensor saved_input = need_weight || need_bias ? input : Tensor();
    const Tensor saved_kernel = need_input ? kernel : Tensor();
    record_op(output, kOp, {x, weight, bias},
              [geometry, input = saved_input, kernel = saved_kernel, need_input, need_weight,
               need_bias](const Tensor& output_gradient) {
        const Tensor dy = output_gradient.contiguous();
        Tensor dx, dweight, dbias;
        if (dy.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
            // On the GPU the bias gradient is its own small kernel: dweight only when wanted.
            if (need_input) dx = detail::conv2d_backward_data_cuda(geometry, dy, kernel);
            if (need_weight) dweight = detail::conv2d_backward_weight_cuda(geometry, input, dy);
            if (need_bias) dbias = detail::conv2d_backward_bias_cuda(geometry, dy);
#else
            detail::fail_without_cuda("conv2d backward");
#endif
            return std::vector<Tensor>{dx, dweight, dbias};
        }
        detail::dispatch_floating(dy.dtype(), "conv2d backward", [&](auto zero) {
            using T = decltype(zero);
            if (need_input) {
                dx = Tensor::empty({geometry.batch, geometry.in_channels, geometry.in_height, geometry.in_width},
                                   dy.dtype(), dy.device());
                cpu::conv2d_backward_data<T>(geometry, dy.data<T>(), kernel.data<T>(), dx.data<T>());
            }
            if (need_weight || need_bias) {
                // One pass gives both; when only the bias needs a gradient we still pay for dweight,
                // a case (frozen conv weights with a trainable bias) rare enough not to special-case.
                Tensor weight_gradient = Tensor::empty(
                    {geometry.out_channels, geometry.in_channels_per_group(), geometry.kernel_height,
                     geometry.kernel_width},
                    dy.dtype(), dy.device());
                if (need_bias) dbias = Tensor::empty({geometry.out_channels}, dy.dtype(), dy.device());
                cpu::conv2d_backward_weight<T>(geometry, input.data<T>(), dy.data<T>(), weight_gradient.data<T>(),
                                               need_bias ? dbias.data<T>() : nullptr);
                if (need_weight) dweight = weight_gradient;
            }
        });
        return std::vector<Tensor>{dx, dweight, dbias};
    });
    return output;
}

}  // namespace cudagrad
