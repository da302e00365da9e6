// softmax and log_softmax over one dimension of any tensor, and cross_entropy of (N, classes)
// logits against int64 labels (N), with optional label smoothing e:
//   softmax(x)[r] = exp(x[r] - m) / sum_s exp(x[s] - m),  m = max_s x[s]   (along the dimension)
//   log_softmax(x)[r] = x[r] - m - log(sum_s exp(x[s] - m))
//   cross_entropy = mean_n [(1 - e) * (-log p[n, y_n]) + e * mean_c (-log p[n, c])],  p = softmax
//   dlogits = g * (softmax(logits) - ((1 - e) * onehot(y) + e / classes)) / N
// The gradient formulas of softmax/log_softmax are in src/cpu/loss.hpp.
// Reference: torch.softmax(x, dim), torch.log_softmax(x, dim),
// torch.nn.functional.cross_entropy(logits, labels, label_smoothing=e) with the default mean
// reduction. Not supported: ignore_index (every label must be a valid class), class weights,
// probability targets.
//
// Speed: exp() bound, ~5 ns per element (src/cpu/loss.hpp). cross_entropy keeps the per-row
// log-sum-exp (N doubles) for backward instead of the (N, classes) probabilities, and recomputes
// the exps there: one extra exp per logit, against memory that would scale with N * classes.
//
// On a GPU (float32; kernels/softmax_cross_entropy.cu, src/cuda/cudnn_softmax.cu):
//   softmax/log_softmax over any dimension, as the (outer, extent, inner) view of the contiguous
//     input; implementation("softmax") picks cuDNN (default; a configuration it declines runs
//     ours) or cudagrad's kernels.
//   cross_entropy always runs the fused kernel: one pass over the logits gives the row maximum,
//     log-sum-exp, label and uniform terms, where log_softmax + gather + mean would write and
//     re-read the (N, classes) log-probabilities and launch three ops. The mean is reduced on
//     the device in a fixed order (no atomics), and backward reads the upstream gradient there:
//     no host synchronisation in a training step.
//   Labels: the CPU op checks them on the host; on a GPU that would copy them back every step,
//     so it does not. A label outside [0, classes) makes the loss NaN (and its gradient row NaN)
//     instead; the data loader checks labels on the host before they go to the device.
#include "cpu/loss.hpp"
#include "cudagrad/ops.hpp"
#include "cudagrad/registry.hpp"
#include "ops/op_support.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/cudnn_softmax.hpp"
#include "cuda/softmax_cross_entropy.hpp"
#include "registry_internal.hpp"
#endif

namespace cudagrad {
namespace {

using detail::check_input;
using detail::dispatch_floating;
using detail::resolve_dimension;

enum class SoftmaxKind { Plain, Logarithm };

// The GPU half of softmax_op: forward writes `output`, backward `input_gradient`, all float32,
// contiguous, on the current device.
void softmax_on_gpu(const Tensor& input, Tensor& output, const cpu::DimensionSplit& split, SoftmaxKind kind) {
#ifdef CUDAGRAD_WITH_CUDA
    const cuda::SoftmaxShape shape{split.outer, split.extent, split.inner};
    const bool logarithm = kind == SoftmaxKind::Logarithm;
    const float* x = input.data<float>();
    float* y = output.data<float>();
    auto ours = [&] { cuda::softmax_forward(x, y, shape, logarithm); };
    if (implementation("softmax") == "cudnn") {
        detail::run_with_fallback("softmax", [&] { cuda::cudnn_softmax_forward(x, y, shape, logarithm); }, ours);
    } else {
        ours();
    }
#else
    (void)input, (void)output, (void)split, (void)kind;
    detail::fail_without_cuda("softmax");
#endif
}

void softmax_backward_on_gpu(const Tensor& output, const Tensor& gradient, Tensor& input_gradient,
                             const cpu::DimensionSplit& split, SoftmaxKind kind) {
#ifdef CUDAGRAD_WITH_CUDA
    const cuda::SoftmaxShape shape{split.outer, split.extent, split.inner};
    const bool logarithm = kind == SoftmaxKind::Logarithm;
    const float* y = output.data<float>();
    const float* g = gradient.data<float>();
    float* dx = input_gradient.data<float>();
    auto ours = [&] { cuda::softmax_backward(y, g, dx, shape, logarithm); };
    if (implementation("softmax") == "cudnn") {
        detail::run_with_fallback("softmax", [&] { cuda::cudnn_softmax_backward(y, g, dx, shape, logarithm); }, ours);
    } else {
        ours();
    }
#else
    (void)output, (void)gradient, (void)input_gradient, (void)split, (void)kind;
    detail::fail_without_cuda("softmax backward");
#endif
}

Tensor softmax_op(const Tensor& x, std::int64_t dimension, SoftmaxKind kind, const char* op) {
    check_input(x, op, "input");
    const cpu::DimensionSplit split = cpu::split_at_dimension(x.shape(), resolve_dimension(x, dimension, op));
    Tensor input = x.contiguous();
    Tensor output = Tensor::empty(x.shape(), x.dtype(), x.device());
    if (x.device().is_cuda()) {
        softmax_on_gpu(input, output, split, kind);
    } else {
        dispatch_floating(x.dtype(), op, [&](auto zero) {
            using T = decltype(zero);
            if (kind == SoftmaxKind::Logarithm) {
                cpu::log_softmax_forward(input.data<T>(), output.data<T>(), split);
            } else {
                cpu::softmax_forward(input.data<T>(), output.data<T>(), split);
            }
        });
    }
    // Both gradients need only the output y; keep a detached handle (not `output`: a cycle).
    record_op(output, op, {x}, [saved_output = output.detach(), split, kind](const Tensor& gradient) {
        Tensor g = gradient.contiguous();
        Tensor input_gradient = Tensor::empty(saved_output.shape(), saved_output.dtype(), saved_output.device());
        if (saved_output.device().is_cuda()) {
            check_input(g, "softmax backward", "gradient");  // float32; makes the device current
            check(g.device() == saved_output.device(), "softmax backward", "the gradient is on ",
                  g.device().str(), " but the output on ", saved_output.device().str());
            softmax_backward_on_gpu(saved_output, g, input_gradient, split, kind);
            return std::vector<Tensor>{input_gradient};
        }
        dispatch_floating(saved_output.dtype(), "softmax backward", [&](auto zero) {
            using T = decltype(zero);
            if (kind == SoftmaxKind::Logarithm) {
                cpu::log_softmax_backward(saved_output.data<T>(), g.data<T>(), input_gradient.data<T>(), split);
            } else {
                cpu::softmax_backward(saved_output.data<T>(), g.data<T>(), input_gradient.data<T>(), split);
            }
        });
        return std::vector<Tensor>{input_gradient};
    });
    return output;
}

void check_cross_entropy_inputs(const Tensor& logits, const Tensor& labels, double label_smoothing) {
    const char* op = "cross_entropy";
    check_input(logits, op, "logits");
    check(logits.dim() == 2, op, "logits must have shape (N, classes), got ", logits.description());
    check(labels.defined(), op, "labels are undefined");
    check(labels.dtype() == DType::Int64, op, "labels must be int64, got ", labels.description());
    check(labels.device() == logits.device(), op, "logits and labels are on different devices (",
          logits.description(), " vs ", labels.description(), ")");
    check(labels.dim() == 1 && labels.size(0) == logits.size(0), op, "labels must have shape [",
          logits.size(0), "] to match logits ", shape_string(logits.shape()), ", got labels ",
          shape_string(labels.shape()));
    check(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, "label_smoothing must be in [0, 1], got ",
          label_smoothing);
}

// The fused GPU cross-entropy (see the top of the file). Saves the row maximum and log-sum
// (2 x N floats) for backward, as the CPU saves lse.
Tensor cross_entropy_on_gpu(const Tensor& logits, const Tensor& labels, double label_smoothing) {
#ifdef CUDAGRAD_WITH_CUDA
    const std::int64_t batch = logits.size(0), classes = logits.size(1);
    const Device device = logits.device();
    Tensor logit_values = logits.contiguous();
    Tensor label_values = labels.contiguous();
    Tensor row_statistics = Tensor::empty({2, batch}, DType::Float32, device);  // row max, row log-sum
    Tensor row_loss = Tensor::empty({batch}, DType::Float64, device);
    Tensor output = Tensor::empty({}, DType::Float32, device);
    float* row_max = row_statistics.data<float>();
    cuda::cross_entropy_forward(logit_values.data<float>(), label_values.data<std::int64_t>(), batch, classes,
                                label_smoothing, row_max, row_max + batch, row_loss.data<double>(),
                                output.data<float>());
    record_op(output, "cross_entropy", {logits, labels},
              [saved_logits = logit_values.detach(), label_values, row_statistics, label_smoothing](
                  const Tensor& gradient) {
                  const char* op = "cross_entropy backward";
                  check_input(gradient, op, "gradient");  // float32 on a GPU; makes its device current
                  check(gradient.device() == saved_logits.device(), op, "the gradient is on ",
                        gradient.device().str(), " but the logits on ", saved_logits.device().str());
                  Tensor upstream = gradient.contiguous();  // one float, read by the kernel on the device
                  const std::int64_t rows = saved_logits.size(0), columns = saved_logits.size(1);
                  Tensor logits_gradient = Tensor::empty(saved_logits.shape(), DType::Float32, saved_logits.device());
                  const float* statistics = row_statistics.data<float>();
                  cuda::cross_entropy_backward(saved_logits.data<float>(), label_values.data<std::int64_t>(),
                                               statistics, statistics + rows, rows, columns, label_smoothing,
                                               upstream.data<float>(), logits_gradient.data<float>());
                  return std::vector<Tensor>{logits_gradient, Tensor()};  // labels get no gradient
              });
    return output;
#else
    (void)logits, (void)labels, (void)label_smoothing;
    detail::fail_without_cuda("cross_entropy");
#endif
}

}  // namespace

Tensor softmax(const Tensor& x, std::int64_t dimension) {
    return softmax_op(x, dimension, SoftmaxKind::Plain, "softmax");
}

Tensor log_softmax(const Tensor& x, std::int64_t dimension) {
    return softmax_op(x, dimension, SoftmaxKind::Logarithm, "log_softmax");
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing) {
    check_cross_entropy_inputs(logits, labels, label_smoothing);
    if (logits.device().is_cuda()) return cross_entropy_on_gpu(logits, labels, label_smoothing);
    const std::int64_t batch = logits.size(0), classes = logits.size(1);
    Tensor label_values = labels.contiguous();
    const std::int64_t* label_data = label_values.data<std::int64_t>();
    for (std::int64_t n = 0; n < batch; ++n) {
        check(label_data[n] >= 0 && label_data[n] < classes, "cross_entropy", "label ", label_data[n], " at index ",
              n, " is out of range [0, ", classes, ") for logits ", shape_string(logits.shape()));
    }
    Tensor logit_values = logits.contiguous();
    Tensor log_sum_exp = Tensor::empty({batch}, DType::Float64, logits.device());
    const double loss = dispatch_floating(logits.dtype(), "cross_entropy", [&](auto zero) {
        using T = decltype(zero);
        return cpu::cross_entropy_forward(logit_values.data<T>(), label_data, batch, classes, label_smoothing,
                                          log_sum_exp.data<double>());
    });
    Tensor output = Tensor::full({}, loss, logits.dtype(), logits.device());
    record_op(output, "cross_entropy", {logits, labels},
              [saved_logits = logit_values.detach(), label_values, log_sum_exp, label_smoothing](
                  const Tensor& gradient) {
                  const std::int64_t rows = saved_logits.size(0);
                  const double scale = gradient.item() / static_cast<double>(rows);
                  Tensor logits_gradient =
                      Tensor::empty(saved_logits.shape(), saved_logits.dtype(), saved_logits.device());
                  dispatch_floating(saved_logits.dtype(), "cross_entropy backward", [&](auto zero) {
                      using T = decltype(zero);
                      cpu::cross_entropy_backward(saved_logits.data<T>(), label_values.data<std::int64_t>(),
                                                  log_sum_exp.data<double>(), rows, saved_logits.size(1),
                                                  label_smoothing, scale, logits_gradient.data<T>());
                  });
                  return std::vector<Tensor>{logits_gradient, Tensor()};  // labels get no gradient
              });
    return output;
}

}  // namespace cudagrad
