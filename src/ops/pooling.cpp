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
//
// On a GPU (float32): implementation("max_pool") and implementation("avg_pool") pick cuDNN
// (src/cuda/cudnn_pooling.cu) or cudagrad's kernels (kernels/pooling.cu) for max_pool2d and
// avg_pool2d; a configuration cuDNN declines runs ours. adaptive_avg_pool2d and
// global_avg_pool2d always run ours. Our max-pool forward saves the winning position per output
// as int32 (the backward gathers with it); cuDNN's backward needs x and y instead, so that path
// keeps those alive until the backward.
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/pooling.hpp"
#include "cudagrad/ops.hpp"
#include "ops/op_support.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include <limits>

#include "cuda/cudnn_pooling.hpp"
#include "cuda/pooling.hpp"
#include "registry_internal.hpp"
#endif

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

#ifdef CUDAGRAD_WITH_CUDA
cuda::PoolGeometry device_geometry(const Tensor& x, const cpu::Pool2dGeometry& g) {
    cuda::PoolGeometry result;
    result.batch = x.size(0);
    result.channels = x.size(1);
    result.input_h = g.input_h;
    result.input_w = g.input_w;
    result.output_h = g.output_h;
    result.output_w = g.output_w;
    result.kernel_h = g.kernel_h;
    result.kernel_w = g.kernel_w;
    result.stride_h = g.stride_h;
    result.stride_w = g.stride_w;
    result.padding_h = g.padding_h;
    result.padding_w = g.padding_w;
    return result;
}

// Storage for one int32 per output element. DType has no int32, so this is a float32 tensor whose
// bytes hold int32 indices: only the max-pool kernels read it, through indices_of().
Tensor index_storage(const Shape& shape, Device device) { return Tensor::empty(shape, DType::Float32, device); }
std::int32_t* indices_of(const Tensor& storage) {
    return storage.defined() ? static_cast<std::int32_t*>(storage.raw_data()) : nullptr;
}

Tensor max_pool2d_cuda(const Tensor& x, const cpu::Pool2dGeometry& geometry) {
    constexpr const char* op = "max_pool2d";
    check(geometry.input_h * geometry.input_w <= std::numeric_limits<std::int32_t>::max(), op,
          "on a GPU the input plane must hold fewer than 2^31 elements (int32 indices), got ",
          shape_string(x.shape()));
    const cuda::PoolGeometry g = device_geometry(x, geometry);
    const Device device = x.device();
    const Tensor input = x.contiguous();
    const Shape shape = output_shape(x, g.output_h, g.output_w);
    Tensor output = Tensor::empty(shape, x.dtype(), device);
    const bool need_gradient = any_requires_grad({x});
    Tensor argmax;  // ours: the winning positions, when a backward will need them
    bool ran_cudnn = false;
    const auto ours = [&] {
        if (need_gradient) argmax = index_storage(shape, device);
        cuda::max_pool2d_forward(input.data<float>(), output.data<float>(), indices_of(argmax), g);
    };
    if (implementation("max_pool") == "cudnn") {
        detail::run_with_fallback(
            op,
            [&] {
                cuda::cudnn_max_pool2d_forward(input.data<float>(), output.data<float>(), g);
                ran_cudnn = true;
            },
            ours);
    } else {
        ours();
    }
    if (!need_gradient) return output;
    // cuDNN's backward finds the maximum again from x and y; ours needs only the indices.
    const Tensor saved_input = ran_cudnn ? input : Tensor();
    const Tensor saved_output = ran_cudnn ? output.detach() : Tensor();
    record_op(output, op, {x},
              [saved_input, saved_output, argmax, g, input_shape = x.shape(),
               device](const Tensor& output_gradient) -> std::vector<Tensor> {
                  make_device_current(device);
                  const Tensor dy = output_gradient.contiguous();
                  Tensor dx = Tensor::empty(input_shape, DType::Float32, device);
                  if (!saved_output.defined()) {
                      cuda::max_pool2d_backward(dy.data<float>(), indices_of(argmax), dx.data<float>(), g);
                      return {dx};
                  }
                  detail::run_with_fallback(
                      "max_pool2d",
                      [&] {
                          cuda::cudnn_max_pool2d_backward(saved_input.data<float>(), saved_output.data<float>(),
                                                          dy.data<float>(), dx.data<float>(), g);
                      },
                      [&] {  // cuDNN declined the backward only: find the indices with our forward
                          const Tensor indices = index_storage(saved_output.shape(), device);
                          const Tensor scratch_output = Tensor::empty(saved_output.shape(), DType::Float32, device);
                          cuda::max_pool2d_forward(saved_input.data<float>(), scratch_output.data<float>(),
                                                   indices_of(indices), g);
                          cuda::max_pool2d_backward(dy.data<float>(), indices_of(indices), dx.data<float>(), g);
                      });
                  return {dx};
              });
    return output;
}

Tensor avg_pool2d_cuda(const Tensor& x, const cpu::Pool2dGeometry& geometry, bool count_include_pad) {
    constexpr const char* op = "avg_pool2d";
    const cuda::PoolGeometry g = device_geometry(x, geometry);
    const Device device = x.device();
    const Tensor input = x.contiguous();
    Tensor output = Tensor::empty(output_shape(x, g.output_h, g.output_w), x.dtype(), device);
    const bool use_cudnn = implementation("avg_pool") == "cudnn";
    const auto ours = [&] { cuda::avg_pool2d_forward(input.data<float>(), output.data<float>(), g, count_include_pad); };
    if (use_cudnn) {
        detail::run_with_fallback(
            op, [&] { cuda::cudnn_avg_pool2d_forward(input.data<float>(), output.data<float>(), g, count_include_pad); },
            ours);
    } else {
        ours();
    }
    if (!any_requires_grad({x})) return output;
    // cuDNN's backward takes x and y too (its API, even for averages); ours needs neither.
    const Tensor saved_input = use_cudnn ? input : Tensor();
    const Tensor saved_output = use_cudnn ? output.detach() : Tensor();
    record_op(output, op, {x},
              [saved_input, saved_output, g, count_include_pad, input_shape = x.shape(),
               device](const Tensor& output_gradient) -> std::vector<Tensor> {
                  make_device_current(device);
                  const Tensor dy = output_gradient.contiguous();
                  Tensor dx = Tensor::empty(input_shape, DType::Float32, device);
                  const auto ours_backward = [&] {
                      cuda::avg_pool2d_backward(dy.data<float>(), dx.data<float>(), g, count_include_pad);
                  };
                  if (saved_output.defined()) {
                      detail::run_with_fallback(
                          "avg_pool2d",
                          [&] {
                              cuda::cudnn_avg_pool2d_backward(saved_input.data<float>(), saved_output.data<float>(),
                                                              dy.data<float>(), dx.data<float>(), g,
                                                              count_include_pad);
                          },
                          ours_backward);
                  } else {
                      ours_backward();
                  }
                  return {dx};
              });
    return output;
}

Tensor adaptive_avg_pool2d_cuda(const Tensor& x, std::int64_t output_h, std::int64_t output_w) {
    const std::int64_t planes = x.size(0) * x.size(1), input_h = x.size(2), input_w = x.size(3);
    const Tensor input = x.contiguous();
    Tensor output = Tensor::empty(output_shape(x, output_h, output_w), x.dtype(), x.device());
    cuda::adaptive_avg_pool2d_forward(input.data<float>(), output.data<float>(), planes, input_h, input_w, output_h,
                                      output_w);
    record_op(output, "adaptive_avg_pool2d", {x},
              [planes, input_h, input_w, output_h, output_w, input_shape = x.shape(),
               device = x.device()](const Tensor& output_gradient) -> std::vector<Tensor> {
                  make_device_current(device);
                  const Tensor dy = output_gradient.contiguous();
                  Tensor dx = Tensor::empty(input_shape, DType::Float32, device);
                  cuda::adaptive_avg_pool2d_backward(dy.data<float>(), dx.data<float>(), planes, input_h, input_w,
                                                     output_h, output_w);
                  return {dx};
              });
    return output;
}

Tensor global_avg_pool2d_cuda(const Tensor& x) {
    const std::int64_t planes = x.size(0) * x.size(1), plane_size = x.size(2) * x.size(3);
    const Tensor input = x.contiguous();
    Tensor output = Tensor::empty(output_shape(x, 1, 1), x.dtype(), x.device());
    cuda::global_avg_pool2d_forward(input.data<float>(), output.data<float>(), planes, plane_size);
    record_op(output, "global_avg_pool2d", {x},
              [planes, plane_size, input_shape = x.shape(),
               device = x.device()](const Tensor& output_gradient) -> std::vector<Tensor> {
                  make_device_current(device);
                  const Tensor dy = output_gradient.contiguous();
                  Tensor dx = Tensor::empty(input_shape, DType::Float32, device);
                  cuda::global_avg_pool2d_backward(dy.data<float>(), dx.data<float>(), planes, plane_size);
                  return {dx};
              });
    return output;
}
#endif

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options) {
    constexpr const char* op = "max_pool2d";
    const cpu::Pool2dGeometry geometry = pool_geometry(x, options, op);
    if (x.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
        return max_pool2d_cuda(x, geometry);
#else
        detail::fail_without_cuda(op);
#endif
    }
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
    if (x.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
        return avg_pool2d_cuda(x, geometry, count_include_pad);
#else
        detail::fail_without_cuda(op);
#endif
    }
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
    if (x.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
        return adaptive_avg_pool2d_cuda(x, output_h, output_w);
#else
        detail::fail_without_cuda(op);
#endif
    }
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
    if (x.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
        return global_avg_pool2d_cuda(x);
#else
        detail::fail_without_cuda(op);
#endif
    }
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
