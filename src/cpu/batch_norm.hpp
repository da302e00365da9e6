// CPU kernels for 2-d batch normalisation (the op and its checks live in src/ops/batch_norm.cpp).
//
// Layout: x, y, dy, dx: (N, C, H, W) contiguous, seen as (batch, channels, plane) with
// plane = H * W; per-channel vectors (mean, inverse standard deviation, weight, bias): (C).
// Channel c of sample n is the contiguous run x[(n * C + c) * plane ... + plane).
//
// All per-channel reductions accumulate in double, also for float32 input: a channel of a
// ResNet batch holds up to ~400k elements, and a float running sum of that many loses about
// three digits. Each kernel runs parallel_for over channels (a channel's work is independent).
#pragma once

#include <cstdint>

namespace cudagrad::cpu {

// Per channel c: mean[c] = sum x / M and biased_variance[c] = sum (x - mean)^2 / M over the
// M = batch * plane values of the channel (two passes, so a large mean does not cancel digits).
template <typename T>
void batch_norm_statistics(const T* x, std::int64_t batch, std::int64_t channels, std::int64_t plane,
                           double* mean, double* biased_variance);

// y = (x - mean[c]) * inverse_std[c] * weight[c] + bias[c]; weight and bias may be null
// (meaning 1 and 0).
template <typename T>
void batch_norm_forward(const T* x, const T* mean, const T* inverse_std, const T* weight, const T* bias, T* y,
                        std::int64_t batch, std::int64_t channels, std::int64_t plane);

// Gradients of the forward above, given dy. With xhat = (x - mean) * inverse_std, M = batch * plane,
// and weight = 1 where null:
//   dbias[c]   = sum dy
//   dweight[c] = sum dy * xhat
//   dx = weight * inverse_std * dy                                         (batch_statistics false:
//        the statistics were constants, the running ones of eval mode)
//   dx = weight * inverse_std / M * (M dy - sum dy - xhat * sum dy * xhat)  (batch_statistics true:
//        mean and inverse_std were themselves functions of x)
// Any of dx, dweight, dbias may be null when that gradient is not needed.
template <typename T>
void batch_norm_backward(const T* dy, const T* x, const T* mean, const T* inverse_std, const T* weight,
                         bool batch_statistics, T* dx, T* dweight, T* dbias, std::int64_t batch,
                         std::int64_t channels, std::int64_t plane);

}  // namespace cudagrad::cpu
