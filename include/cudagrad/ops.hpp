// The differentiable ops. Each takes and returns Tensors, checks its inputs (shapes, dtypes,
// devices) with a message that names the op and the shapes, computes on the inputs' device,
// and records a Node for autograd when an input requires a gradient.
//
// Layout is NCHW throughout: x: (N, C, H, W). Floating ops accept float32 and float64 (the
// latter for gradient checks); labels are int64.
// Each op family lives in its own source file under src/ops/, which starts with the math.
#pragma once

#include <cstdint>

#include "cudagrad/tensor.hpp"

namespace cudagrad {

// ---------------------------------------------------------------- elementwise (elementwise.cpp)
Tensor add(const Tensor& a, const Tensor& b);  // same shapes
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, double factor);  // a * factor
Tensor add_scalar(const Tensor& a, double value);
Tensor relu(const Tensor& x);  // activation.cpp; gradient at 0 is 0, as PyTorch
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, double factor);

// ---------------------------------------------------------------- reductions (reduction.cpp)
Tensor sum(const Tensor& x);   // all elements -> shape []
Tensor mean(const Tensor& x);  // all elements -> shape []
Tensor sum(const Tensor& x, std::int64_t dimension, bool keep_dimension = false);
// Index of the largest element along `dimension` (int64, not differentiable).
Tensor argmax(const Tensor& x, std::int64_t dimension);
// logits: (N, classes), labels: (N) int64 -> int64 scalar on the logits' device: the number of
// rows whose label is among the k largest logits (ties rank the lower class first). For top-k
// accuracy without copying logits to the host (accuracy.cpp).
Tensor top_k_hits(const Tensor& logits, const Tensor& labels, std::int64_t k);

// ---------------------------------------------------------------- shape (shape.cpp)
// Differentiable versions of the Tensor view methods: the gradient flows back to the input.
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x, std::int64_t start_dim = 1);  // (N, C, H, W) -> (N, C*H*W)
Tensor transpose(const Tensor& x, std::int64_t dim0, std::int64_t dim1);
Tensor slice(const Tensor& x, std::int64_t dimension, std::int64_t start, std::int64_t end);

// ---------------------------------------------------------------- conv2d (conv2d.cpp)
struct Conv2dOptions {
    std::int64_t stride_h = 1, stride_w = 1;
    std::int64_t padding_h = 0, padding_w = 0;
    std::int64_t dilation_h = 1, dilation_w = 1;
    std::int64_t groups = 1;
};
// x: (N, C, H, W), weight: (K, C/groups, R, S), bias: (K) or undefined.
// y: (N, K, P, Q), P = (H + 2*pad_h - dilation_h*(R-1) - 1) / stride_h + 1, likewise Q.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options = {});

// ---------------------------------------------------------------- linear (linear.cpp)
// x: (N, in), weight: (out, in), bias: (out) or undefined -> y: (N, out) = x weight^T + bias.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);
// a: (M, K), b: (K, N) -> (M, N).
Tensor matmul(const Tensor& a, const Tensor& b);

// ---------------------------------------------------------------- batch norm (batch_norm.cpp)
struct BatchNormOptions {
    bool training = true;
    double momentum = 0.1;
    double eps = 1e-5;
};
// x: (N, C, H, W); weight, bias, running_mean, running_var: (C).
// training: y = (x - mean_b) / sqrt(var_b + eps) * weight + bias with the batch mean and the
//   biased batch variance over (N, H, W); running_mean/var (if defined) are updated in place:
//   running = (1 - momentum) * running + momentum * batch statistic, with the *unbiased*
//   variance, and num_batches_tracked (int64 scalar, if defined) incremented. No gradient flows
//   into the running statistics.
// eval: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias.
// weight and bias may be undefined (affine=False).
Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                    Tensor running_var, Tensor num_batches_tracked, const BatchNormOptions& options);

// ---------------------------------------------------------------- pooling (pooling.cpp)
struct Pool2dOptions {
    std::int64_t kernel_h = 1, kernel_w = 1;
    std::int64_t stride_h = 1, stride_w = 1;  // PyTorch's default stride = kernel size: set both
    std::int64_t padding_h = 0, padding_w = 0;
    bool count_include_pad = true;  // avg_pool2d only, PyTorch's default
};
// Output size as PyTorch with ceil_mode=False: P = (H + 2*pad - kernel) / stride + 1.
// Padding must be at most half the kernel (PyTorch's rule). Max-pool pads with -infinity;
// in backward a tie sends the gradient to the first maximum in window order.
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options);
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options);
// PyTorch's adaptive windows: start = floor(i*H/P), end = ceil((i+1)*H/P).
Tensor adaptive_avg_pool2d(const Tensor& x, std::int64_t output_h, std::int64_t output_w);
Tensor global_avg_pool2d(const Tensor& x);  // (N, C, H, W) -> (N, C, 1, 1)

// ---------------------------------------------------------------- softmax and loss (loss.cpp)
Tensor softmax(const Tensor& x, std::int64_t dimension = 1);
Tensor log_softmax(const Tensor& x, std::int64_t dimension = 1);
// logits: (N, classes), labels: (N) int64 in [0, classes).
// loss = mean over n of (1 - e) * (-log p[n, label]) + e * mean over c of (-log p[n, c]),
// e = label_smoothing in [0, 1]. Returns a scalar (shape []).
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing = 0.0);

}  // namespace cudagrad
