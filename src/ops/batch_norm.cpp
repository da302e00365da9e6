// batch_norm2d: batch normalisation of x: (N, C, H, W) per channel, as torch.nn.functional.batch_norm.
//
// Training (options.training):
//   mean_c = sum over (n, h, w) of x / M,  var_c = sum (x - mean_c)^2 / M   (biased), M = N*H*W
//   y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c
//   running_mean = (1 - momentum) running_mean + momentum mean_c
//   running_var  = (1 - momentum) running_var  + momentum var_c * M / (M - 1)   (unbiased)
//   num_batches_tracked += 1
// The running statistics are updated in place, outside autograd: no gradient reaches them.
// Eval: the same y with running_mean and running_var in place of the batch statistics.
// weight, bias (affine parameters), running_mean, running_var: (C), each may be undefined,
// except that eval mode needs the running statistics.
//
// Backward (see cpu/batch_norm.hpp for the formulas): in training, dx goes through the batch
// statistics as well (the three-term formula); in eval mode it is the plain affine gradient.
// The forward saves mean and 1/sqrt(var + eps) per channel (C values each), not a copy of y.
//
// Reference: PyTorch, including its errors: training with one value per channel (N*H*W == 1)
// fails, since the unbiased variance would divide by zero.
// Deliberate difference: momentum outside [0, 1] and negative eps are rejected (PyTorch takes
// them silently); momentum=None (a cumulative average) is not offered.
//
// What limits the speed: memory bandwidth (see cpu/batch_norm.cpp); the work is spread over
// channels with parallel_for.
//
// On a GPU (float32): implementation("batch_norm") picks cuDNN (src/cuda/cudnn_batch_norm.cu) or
// cudagrad's kernels (kernels/batch_norm.cu); a configuration cuDNN declines runs ours. The eval-
// mode backward is always ours (cuDNN has none), and so is a backward that needs no dx (cuDNN's
// always writes one). num_batches_tracked may live on the CPU or on the input's GPU (a module
// moved to the GPU moves it too); on the GPU a one-thread kernel increments it.
#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu/batch_norm.hpp"
#include "cudagrad/ops.hpp"
#include "ops/op_support.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/batch_norm.hpp"
#include "cuda/cudnn_batch_norm.hpp"
#include "registry_internal.hpp"
#endif

namespace cudagrad {
namespace {

constexpr const char* kOp = "batch_norm2d";

// A per-channel tensor (weight, bias, running statistic): undefined, or shape (C) with the input's
// dtype and device.
void check_channel_vector(const Tensor& vector, const Tensor& x, const char* name) {
    if (!vector.defined()) return;
    detail::check_same_kind(x, vector, kOp, "input", name);
    check(vector.dim() == 1 && vector.size(0) == x.size(1), kOp, name, " must have shape [", x.size(1),
          "] (one value per channel of input ", shape_string(x.shape()), "), got ", shape_string(vector.shape()));
}

// Element i of a 1-d tensor, whatever its stride.
template <typename T>
T& element(const Tensor& vector, std::int64_t i) {
    return vector.data<T>()[i * vector.strides()[0]];
}

#ifdef CUDAGRAD_WITH_CUDA
float* float_data(const Tensor& tensor) { return tensor.defined() ? tensor.data<float>() : nullptr; }

// Device scratch for the kernels, from the caching allocator (a float32 tensor used as bytes).
Tensor device_scratch(std::int64_t bytes, Device device) {
    return Tensor::empty({(bytes + 3) / 4}, DType::Float32, device);
}

// The running statistic as cuDNN wants it: contiguous (the tensor itself when it already is).
Tensor contiguous_or_undefined(const Tensor& vector) { return vector.defined() ? vector.contiguous() : Tensor(); }

Tensor batch_norm2d_cuda(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                         const Tensor& running_var, const Tensor& num_batches_tracked, const BatchNormOptions& options) {
    const std::int64_t batch = x.size(0), channels = x.size(1), plane = x.size(2) * x.size(3);
    const Device device = x.device();
    const bool use_cudnn = implementation("batch_norm") == "cudnn";
    const Tensor input = x.contiguous();
    const Tensor weight_values = weight.defined() ? weight.contiguous() : Tensor();
    const Tensor bias_values = bias.defined() ? bias.contiguous() : Tensor();
    Tensor output = Tensor::empty(x.shape(), x.dtype(), device);
    Tensor saved_mean = Tensor::empty({channels}, x.dtype(), device);
    Tensor saved_inverse_std = Tensor::empty({channels}, x.dtype(), device);

    cuda::BatchNormForward args;
    args.x = input.data<float>();
    args.y = output.data<float>();
    args.weight = float_data(weight_values);
    args.bias = float_data(bias_values);
    args.saved_mean = saved_mean.data<float>();
    args.saved_inverse_std = saved_inverse_std.data<float>();
    args.running_mean = float_data(running_mean);
    args.running_mean_stride = running_mean.defined() ? running_mean.strides()[0] : 1;
    args.running_var = float_data(running_var);
    args.running_var_stride = running_var.defined() ? running_var.strides()[0] : 1;
    args.momentum = options.momentum;
    args.eps = options.eps;
    args.batch = batch;
    args.channels = channels;
    args.plane = plane;

    const auto ours = [&] {
        const std::int64_t bytes = cuda::batch_norm_scratch_bytes(batch, channels, plane);
        const Tensor scratch = device_scratch(bytes, device);
        if (options.training) {
            cuda::batch_norm_forward_training(args, scratch.raw_data(), bytes);
        } else {
            cuda::batch_norm_forward_inference(args, scratch.raw_data(), bytes);
        }
    };
    const auto vendor = [&] {
        cuda::BatchNormForward vendor_args = args;
        const Tensor ones = weight_values.defined() ? Tensor() : Tensor::ones({channels}, DType::Float32, device);
        const Tensor zeros = bias_values.defined() ? Tensor() : Tensor::zeros({channels}, DType::Float32, device);
        if (ones.defined()) vendor_args.weight = ones.data<float>();
        if (zeros.defined()) vendor_args.bias = zeros.data<float>();
        Tensor mean_values = contiguous_or_undefined(running_mean);
        Tensor var_values = contiguous_or_undefined(running_var);
        vendor_args.running_mean = float_data(mean_values);
        vendor_args.running_var = float_data(var_values);
        vendor_args.running_mean_stride = vendor_args.running_var_stride = 1;
        if (options.training) {
            cuda::cudnn_batch_norm_forward_training(vendor_args);
            // Strided running statistics were updated in a contiguous copy: write it back.
            if (mean_values.defined() && !mean_values.same_as(running_mean)) Tensor(running_mean).copy_(mean_values);
            if (var_values.defined() && !var_values.same_as(running_var)) Tensor(running_var).copy_(var_values);
        } else {
            cuda::cudnn_batch_norm_forward_inference(vendor_args);
        }
    };
    if (use_cudnn) {
        detail::run_with_fallback(kOp, vendor, ours);
    } else {
        ours();
    }
    if (options.training && num_batches_tracked.defined()) {
        if (num_batches_tracked.device().is_cpu()) {
            num_batches_tracked.data<std::int64_t>()[0] += 1;
        } else {
            cuda::increment_int64_counter(num_batches_tracked.data<std::int64_t>());
        }
    }

    if (!any_requires_grad({x, weight, bias})) return output;
    const bool need_input = x.requires_grad();
    const bool need_weight = weight.defined() && weight.requires_grad();
    const bool need_bias = bias.defined() && bias.requires_grad();
    const bool batch_statistics = options.training;
    const double eps = options.eps;
    record_op(output, kOp, {x, weight, bias},
              [input, weight_values, saved_mean, saved_inverse_std, batch_statistics, need_input, need_weight,
               need_bias, batch, channels, plane, eps, use_cudnn](const Tensor& output_gradient) -> std::vector<Tensor> {
                  const Device device = input.device();
                  make_device_current(device);
                  const Tensor dy = output_gradient.contiguous();
                  Tensor dx = need_input ? Tensor::empty(input.shape(), input.dtype(), device) : Tensor();
                  Tensor dweight = need_weight ? Tensor::empty({channels}, input.dtype(), device) : Tensor();
                  Tensor dbias = need_bias ? Tensor::empty({channels}, input.dtype(), device) : Tensor();
                  cuda::BatchNormBackward args;
                  args.dy = dy.data<float>();
                  args.x = input.data<float>();
                  args.saved_mean = saved_mean.data<float>();
                  args.saved_inverse_std = saved_inverse_std.data<float>();
                  args.weight = float_data(weight_values);
                  args.batch_statistics = batch_statistics;
                  args.dx = float_data(dx);
                  args.dweight = float_data(dweight);
                  args.dbias = float_data(dbias);
                  args.batch = batch;
                  args.channels = channels;
                  args.plane = plane;
                  const auto ours = [&] {
                      const std::int64_t bytes = cuda::batch_norm_scratch_bytes(batch, channels, plane);
                      const Tensor scratch = device_scratch(bytes, device);
                      cuda::batch_norm_backward(args, scratch.raw_data(), bytes);
                  };
                  if (use_cudnn && batch_statistics && need_input) {
                      detail::run_with_fallback(
                          kOp,
                          [&] {
                              cuda::BatchNormBackward vendor_args = args;
                              const Tensor ones = weight_values.defined()
                                                      ? Tensor()
                                                      : Tensor::ones({channels}, DType::Float32, device);
                              if (ones.defined()) vendor_args.weight = ones.data<float>();
                              cuda::cudnn_batch_norm_backward(vendor_args, eps);
                          },
                          ours);
                  } else {
                      ours();
                  }
                  return {dx, dweight, dbias};
              });
    return output;
}
#endif

}  // namespace

Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                    Tensor running_var, Tensor num_batches_tracked, const BatchNormOptions& options) {
    detail::check_input(x, kOp, "input");
    detail::check_dim(x, 4, kOp, "input");
    check_channel_vector(weight, x, "weight");
    check_channel_vector(bias, x, "bias");
    check_channel_vector(running_mean, x, "running_mean");
    check_channel_vector(running_var, x, "running_var");
    if (num_batches_tracked.defined()) {
        check(num_batches_tracked.dtype() == DType::Int64 && num_batches_tracked.numel() == 1 &&
                  num_batches_tracked.dim() <= 1 &&
                  (num_batches_tracked.device().is_cpu() || num_batches_tracked.device() == x.device()),
              kOp, "num_batches_tracked must be an int64 scalar (shape [] or [1]) on the cpu or on the input's device (",
              x.device().str(), "), got ", num_batches_tracked.description());
    }
    check(std::isfinite(options.eps) && options.eps >= 0.0, kOp, "eps must be finite and >= 0, got ",
          options.eps);
    check(std::isfinite(options.momentum) && options.momentum >= 0.0 && options.momentum <= 1.0, kOp,
          "momentum must be in [0, 1], got ", options.momentum);

    const std::int64_t batch = x.size(0), channels = x.size(1), plane = x.size(2) * x.size(3);
    const std::int64_t count = batch * plane;  // values per channel
    if (options.training) {
        check(count > 1, kOp, "expected more than 1 value per channel when training, got input ",
              shape_string(x.shape()));
    } else {
        check(running_mean.defined() && running_var.defined(), kOp,
              "eval mode (training = false) normalises with running_mean and running_var, so both must be "
              "defined (input ",
              shape_string(x.shape()), ")");
    }

    if (x.device().is_cuda()) {
#ifdef CUDAGRAD_WITH_CUDA
        return batch_norm2d_cuda(x, weight, bias, running_mean, running_var, num_batches_tracked, options);
#else
        detail::fail_without_cuda(kOp);
#endif
    }

    const Tensor input = x.contiguous();
    const Tensor weight_values = weight.defined() ? weight.contiguous() : Tensor();
    const Tensor bias_values = bias.defined() ? bias.contiguous() : Tensor();
    Tensor output = Tensor::empty(x.shape(), x.dtype(), x.device());
    Tensor saved_mean = Tensor::empty({channels}, x.dtype(), x.device());
    Tensor saved_inverse_std = Tensor::empty({channels}, x.dtype(), x.device());

    detail::dispatch_floating(x.dtype(), kOp, [&](auto zero) {
        using T = decltype(zero);
        T* mean = saved_mean.data<T>();
        T* inverse_std = saved_inverse_std.data<T>();
        if (options.training) {
            std::vector<double> batch_mean(static_cast<std::size_t>(channels));
            std::vector<double> batch_variance(static_cast<std::size_t>(channels));
            cpu::batch_norm_statistics(input.data<T>(), batch, channels, plane, batch_mean.data(),
                                       batch_variance.data());
            const double momentum = options.momentum;
            const double unbiased_factor = static_cast<double>(count) / static_cast<double>(count - 1);
            for (std::int64_t c = 0; c < channels; ++c) {
                const auto i = static_cast<std::size_t>(c);
                mean[c] = static_cast<T>(batch_mean[i]);
                inverse_std[c] = static_cast<T>(1.0 / std::sqrt(batch_variance[i] + options.eps));
                if (running_mean.defined()) {
                    T& running = element<T>(running_mean, c);
                    running = static_cast<T>((1.0 - momentum) * running + momentum * batch_mean[i]);
                }
                if (running_var.defined()) {
                    T& running = element<T>(running_var, c);
                    running = static_cast<T>((1.0 - momentum) * running +
                                             momentum * batch_variance[i] * unbiased_factor);
                }
            }
            if (num_batches_tracked.defined()) num_batches_tracked.data<std::int64_t>()[0] += 1;
        } else {
            // A snapshot: later in-place updates of the running statistics must not change what
            // this forward's backward sees.
            for (std::int64_t c = 0; c < channels; ++c) {
                mean[c] = element<T>(running_mean, c);
                inverse_std[c] = static_cast<T>(
                    1.0 / std::sqrt(static_cast<double>(element<T>(running_var, c)) + options.eps));
            }
        }
        cpu::batch_norm_forward(input.data<T>(), mean, inverse_std,
                                weight_values.defined() ? weight_values.data<T>() : nullptr,
                                bias_values.defined() ? bias_values.data<T>() : nullptr, output.data<T>(), batch,
                                channels, plane);
    });

    if (!any_requires_grad({x, weight, bias})) return output;
    const bool need_input = x.requires_grad();
    const bool need_weight = weight.defined() && weight.requires_grad();
    const bool need_bias = bias.defined() && bias.requires_grad();
    const bool batch_statistics = options.training;
    record_op(output, kOp, {x, weight, bias},
              [input, weight_values, saved_mean, saved_inverse_std, batch_statistics, need_input, need_weight,
               need_bias, batch, channels, plane](const Tensor& output_gradient) -> std::vector<Tensor> {
                  const Tensor dy = output_gradient.contiguous();
                  Tensor dx = need_input ? Tensor::empty(input.shape(), input.dtype(), input.device()) : Tensor();
                  Tensor dweight = need_weight ? Tensor::empty({channels}, input.dtype(), input.device()) : Tensor();
                  Tensor dbias = need_bias ? Tensor::empty({channels}, input.dtype(), input.device()) : Tensor();
                  detail::dispatch_floating(input.dtype(), kOp, [&](auto zero) {
                      using T = decltype(zero);
                      cpu::batch_norm_backward(dy.data<T>(), input.data<T>(), saved_mean.data<T>(),
                                               saved_inverse_std.data<T>(),
                                               weight_values.defined() ? weight_values.data<T>() : nullptr,
                                               batch_statistics, dx.defined() ? dx.data<T>() : nullptr,
                                               dweight.defined() ? dweight.data<T>() : nullptr,
                                               dbias.defined() ? dbias.data<T>() : nullptr, batch, channels,
                                               plane);
                  });
                  return {dx, dweight, dbias};
              });
    return output;
}

}  // namespace cudagrad
