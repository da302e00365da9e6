// Pooling over the spatial dimensions of x: (N, C, H, W), every (n, c) plane independently.
//
//   max_pool2d          y[p, q] = max over the window of x (padding is -infinity)
//   avg_pool2d          y[p, q] = sum over the window of x / divisor
//   adaptive_avg_pool2d y[p, q] = mean of x over rows [floor(p*H/P), ceil((p+1)*H/P)), likewise columns
//   global_avg_pool2d   y: (N, C, 1, 1) = mean of each plane
// Windows of max/avg pooling: rows [p*stride - padding, ... + kernel), P = (H + 2*padding - kernel)
// / stride + 1 (ceil_mode=False). avg_pool2d's divisor is kernel_h*kernel_w with
// count_include_pad, else the number of window positions inside the input.
//
// Backward: max pooling sends each dy to the input position that won (the first maximum in
// row-major window order on ties, as PyTorch; the forward records that position per output),
// average pooling spreads dy / divisor over the window.
//
// Reference: torch.nn.functional.max_pool2d / avg_pool2d (ceil_mode=False, dilation 1,
// divisor_override None) / adaptive_avg_pool2d, including PyTorch's rule that padding is at most
// half the kernel. Deliberate difference: only 4-d input, and no empty tensors.
//
// What limits the speed: see cpu/pooling.cpp -- a pass over the input per direction, cheap next
// to the convolutions; planes are spread over threads.
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/pooling.hpp"
#include "cudagrad/ops.hpp"
#include "ops/op_support.hpp"

namespace cudagrad {
namespace {

// Checks x and the options for max_pool2d/avg_pool2d and works out the output size.
cpu::Pool2dGeometry pool_geometry(const Tensor& x, const Pool2dOptions& options, const char* op) {
    detail::check_input(x, op, "input");
    detail::check_dim(x, 4, op, "input");
    const std::string input = shape_string(x.shape());
    check(options.kernel_h > 0 && options.kernel_w > 0, op, "kernel size must be positive, got ", options.kernel_h,
          "x", options.kernel_w, " (input ", input, ")");
    check(options.stride_h > 0 && options.stride_w > 0, op, "stride must be positive, got ", options.stride_h, "x",
          options.stride_w, " (input ", input, ")");
    check(options.padding_h >= 0 && options.padding_w >= 0, op, "padding must be non-negative, got ",
          options.padding_h, "x", options.padding_w, " (input ", input, ")");
    check(options.padding_h <= options.kernel_h / 2 && options.padding_w <= options.kernel_w / 2, op,
          "padding should be at most half of the kernel size, got padding ", options.padding_h, "x",
          options.padding_w, " for kernel ", options.kernel_h, "x", options.kernel_w, " (input ", input, ")");
    cpu::Pool2dGeometry geometry;
    geometry.planes = x.size(0) * x.size(1);
    geometry.input_h = x.size(2);
    geometry.input_w = x.size(3);
    geometry.kernel_h = options.kernel_h;
    geometry.kernel_w = options.kernel_w;
    geometry.stride_h = options.stride_h;
    geometry.stride_w = options.stride_w;
    geometry.padding_h = options.padding_h;
    geometry.padding_w = options.padding_w;
    // Checked before dividing: C++ division truncates toward zero, so a negative numerator
    // would otherwise yield an output size of 1.
    check(geometry.input_h + 2 * options.padding_h >= options.kernel_h &&
              geometry.input_w + 2 * options.padding_w >= options.kernel_w,
          op, "kernel ", options.kernel_h, "x", options.kernel_w, " is larger than the padded input (input ", input,
          ", padding ", options.padding_h, "x", options.padding_w, ")");
    geometry.output_h = (geometry.input_h + 2 * options.padding_h - options.kernel_h) / options.stride_h + 1;
    geometry.output_w = (geometry.input_w + 2 * options.padding_w - options.kernel_w) / options.stride_w + 1;
    return geometry;
}

Shape output_shape(const Tensor& x, std::int64_t output_h, std::int64_t output_w) {
    return {x.size(0), x.size(1), output_h, output_w};
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options) {
    constexpr const char* op = "max_pool2d";
    const cpu::Pool2dGeometry geometry = pool_geometry(x, options, op);
    const Tensor input = x.contiguous();
    const Shape shape = output_shape(x, geometry.output_h, geometry.output_w);
    Tensor output = Tensor::empty(shape, x.dtype(), x.device());
    const bool need_gradient = any_requires_grad({x});
    // The winning position of each window, recorded only when a backward will need it.
    Tensor argmax = need_gradient ? Tensor::empty(shape, DType::Int64, x.device()) : Tensor();
    detail::dispatch_floating(x.dtype(), op, [&](auto zero) {
        using T = decltype(zero);
        cpu::max_pool2d_forward(input.data<T>(), output.data<T>(),
                                argmax.defined() ? argmax.data<std::int64_t>() : nullptr, geometry);
    });
    if (!need_gradient) return output;
    record_op(output, op, {x},
              [argmax, geometry, input_shape = x.shape(), dtype = x.dtype(),
               device = x.device()](const Tensor& output_gradient) -> std::vector<Tensor> {
                  const Tensor dy = output_gradient.contiguous();
                  Tensor dx = Tensor::empty(input_shape, dtype, device);
                  detail::dispatch_floating(dtype, "max_pool2d", [&](auto zero) {
                      using T = decltype(zero);
                      cpu::max_pool2d_backward(dy.data<T>(), argmax.data<std::int64_t>(), dx.data<T>(), geometry);
                  });
                  return {dx};
              });
    return output;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options) {
    constexpr const char* op = "avg_pool2d";
    const cpu::Pool2dGeometry geometry = pool_geometry(x, options, op);
    const bool count_include_pad = options.count_include_pad;
    const Tensor input = x.contiguous();
    Tensor output = Tensor::empty(output_shape(x, geometry.output_h, geometry.output_w), x.dtype(), x.device());
    detail::dispatch_floating(x.dtype(), op, [&](auto zero) {
        using T = decltype(zero);
        cpu::avg_pool2d_forward(input.data<T>(), output.data<T>(), geometry, count_include_pad);
    });
    record_op(output, op, {x},
              [geometry, count_include_pad, input_shape = x.shape(), dtype = x.dtype(),
               device = x.device()](const Tensor& output_gradient) -> std::vector<Tensor> {
                  const Tensor dy = output_gradient.contiguous();
                  Tensor dx = Tensor::empty(input_shape, dtype, device);
                  detail::dispatch_floating(dtype, "avg_pool2d", [&](auto zero) {
                      using T = decltype(zero);
                      cpu::avg_pool2d_backward(dy.data<T>(), dx.data<T>(), geometry, count_include_pad);
                  });
                  return {dx};
              });
    return output;
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::int64_t output_h, std::int64_t output_w) {
    constexpr const char* op = "adaptive_avg_pool2d";
    detail::check_input(x, op, "input");
    detail::check_dim(x, 4, op, "input");
    check(output_h > 0 && output_w > 0, op, "output size must be positive, got ", output_h, "x", output_w,
          " (input ", shape_string(x.shape()), ")");
    const std::int64_t planes = x.size(0) * x.size(1), input_h = x.size(2), input_w = x.size(3);
    const Tensor input = x.contiguous();
    Tensor output = Tensor::empty(output_shape(x, output_h, output_w), x.dtype(), x.device());
    detail::dispatch_floating(x.dtype(), op, [&](auto zero) {
        using T = decltype(zero);
        cpu::adaptive_avg_pool2d_forward(input.data<T>(), output.data<T>(), planes, input_h, input_w, output_h,
                                         output_w);
    });
    record_op(output, op, {x},
              [planes, input_h, input_w, output_h, output_w, input_shape = x.shape(), dtype = x.dtype(),
               device = x.device()](const Tensor& output_gradient) -> std::vector<Tensor> {
                  const Tensor dy = output_gradient.contiguous();
                  Tensor dx = Tensor::empty(input_shape, dtype, device);
                  detail::dispatch_floating(dtype, "adaptive_avg_pool2d", [&](auto zero) {
                      using T = decltype(zero);
                      cpu::adaptive_avg_pool2d_backward(dy.data<T>(), dx.data<T>(), planes, input_h, input_w,
                                                        output_h, output_w);
                  });
                  return {dx};
              });
    return output;
}

Tensor global_avg_pool2d(const Tensor& x) {
    constexpr const char* op = "global_avg_pool2d";
    detail::check_input(x, op, "input");
    detail::check_dim(x, 4, op, "input");
    const std::int64_t planes = x.size(0) * x.size(1), plane_size = x.size(2) * x.size(3);
    const Tensor input = x.contiguous();
    Tensor output = Tensor::empty(output_shape(x, 1, 1), x.dtype(), x.device());
    detail::dispatch_floating(x.dtype(), op, [&](auto zero) {
        using T = decltype(zero);
        cpu::global_avg_pool2d_forward(input.data<T>(), output.data<T>(), planes, plane_size);
    });
    record_op(output, op, {x},
              [planes, plane_size, input_shape = x.shape(), dtype = x.dtype(),
               device = x.device()](const Tensor& output_gradient) -> std::vector<Tensor> {
                  const Tensor dy = output_gradient.contiguous();
                  Tensor dx = Tensor::empty(input_shape, dtype, device);
                  detail::dispatch_floating(dtype, "global_avg_pool2d", [&](auto zero) {
                      using T = decltype(zero);
                      cpu::global_avg_pool2d_backward(dy.data<T>(), dx.data<T>(), planes, plane_size);
                  });
                  return {dx};
              });
    return output;
}

}  // namespace cudagrad
