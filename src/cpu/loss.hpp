// CPU kernels for softmax, log-softmax and cross-entropy.
//
// Softmax runs over the middle axis of the (outer, extent, inner) view of a contiguous tensor
// (reduction.hpp explains the split): for each (o, i),
//   softmax:      y[r] = exp(x[r] - m) / sum_s exp(x[s] - m),   m = max_s x[s]
//   log_softmax:  y[r] = (x[r] - m) - log(sum_s exp(x[s] - m))
// Subtracting the maximum keeps every exp() in (0, 1], so logits of +-1000 do not overflow.
// Backward, with g the gradient of y:
//   softmax:      dx[r] = y[r] * (g[r] - sum_s g[s] y[s])
//   log_softmax:  dx[r] = g[r] - exp(y[r]) * sum_s g[s]
//
// Cross-entropy with label smoothing e, logits (N, C), labels (N) (PyTorch's definition):
//   lse[n]  = log(sum_c exp(logits[n, c]))                       (computed stably as above)
//   loss[n] = (1 - e) * (lse[n] - logits[n, label[n]]) + e * (lse[n] - mean_c logits[n, c])
//   loss    = mean_n loss[n]
//   dlogits[n, c] = scale * (exp(logits[n, c] - lse[n]) - e / C - (1 - e) * [c == label[n]])
// where scale is the incoming gradient of the loss divided by N.
//
// Speed: exp() dominates (~5 ns each, not vectorized without -ffast-math): a (128, 1000)
// softmax costs ~1 ms on one core, so rows are spread over the thread pool in chunks of at
// least ~8k elements. Row sums accumulate in double.
#pragma once

#include <cstdint>

#include "cpu/reduction.hpp"

namespace cudagrad::cpu {

template <typename T> void softmax_forward(const T* x, T* y, const DimensionSplit& split);
template <typename T> void log_softmax_forward(const T* x, T* y, const DimensionSplit& split);
template <typename T>
void softmax_backward(const T* y, const T* y_gradient, T* x_gradient, const DimensionSplit& split);
template <typename T>
void log_softmax_backward(const T* y, const T* y_gradient, T* x_gradient, const DimensionSplit& split);

// Labels must already be checked to lie in [0, classes). Writes lse[n] (the row
// log-sum-exp, kept for the backward pass) and returns the mean loss.
template <typename T>
double cross_entropy_forward(const T* logits, const std::int64_t* labels, std::int64_t batch, std::int64_t classes,
                             double label_smoothing, double* log_sum_exp);

template <typename T>
void cross_entropy_backward(const T* logits, const std::int64_t* labels, const double* log_sum_exp,
                            std::int64_t batch, std::int64_t classes, double label_smoothing, double scale,
                            T* logits_gradient);

}  // namespace cudagrad::cpu
