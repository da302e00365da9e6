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
#include "cpu/loss.hpp"
#include "cudagrad/ops.hpp"
#include "ops/op_support.hpp"

namespace cudagrad {
namespace {

using detail::check_input;
using detail::dispatch_floating;

std::size_t resolve_dimension(const Tensor& x, std::int64_t dimension, const char* op) {
    check(dimension >= -x.dim() && dimension < x.dim(), op, "dimension ", dimension, " is out of range for input ",
          x.description());
    return static_cast<std::size_t>(dimension < 0 ? dimension + x.dim() : dimension);
}

enum class SoftmaxKind { Plain, Logarithm };

Tensor softmax_op(const Tensor& x, std::int64_t dimension, SoftmaxKind kind, const char* op) {
    check_input(x, op, "input");
    const cpu::DimensionSplit split = cpu::split_at_dimension(x.shape(), resolve_dimension(x, dimension, op));
    Tensor input = x.contiguous();
    Tensor output = Tensor::empty(x.shape(), x.dtype(), x.device());
    dispatch_floating(x.dtype(), op, [&](auto zero) {
        using T = decltype(zero);
        if (kind == SoftmaxKind::Logarithm) {
            cpu::log_softmax_forward(input.data<T>(), output.data<T>(), split);
        } else {
            cpu::softmax_forward(input.data<T>(), output.data<T>(), split);
        }
    });
    // Both gradients need only the output y; keep a detached handle (not `output`: a cycle).
    record_op(output, op, {x}, [saved_output = output.detach(), split, kind](const Tensor& gradient) {
        Tensor g = gradient.contiguous();
        Tensor input_gradient = Tensor::empty(saved_output.shape(), saved_output.dtype(), saved_output.device());
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

}  // namespace

Tensor softmax(const Tensor& x, std::int64_t dimension) {
    return softmax_op(x, dimension, SoftmaxKind::Plain, "softmax");
}

Tensor log_softmax(const Tensor& x, std::int64_t dimension) {
    return softmax_op(x, dimension, SoftmaxKind::Logarithm, "log_softmax");
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing) {
    check_cross_entropy_inputs(logits, labels, label_smoothing);
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
