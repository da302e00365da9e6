// Device helpers shared by the batch-norm kernel files (kernels/batch_norm.cu: v1 and the entry
// points; kernels/batch_norm_v2.cu: v2 and eval): block reductions in double, and the per-channel
// finishing math, written once so both versions compute the constants with the same expressions.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/batch_norm.hpp"

namespace cudagrad::cuda::batch_norm_detail {

constexpr int threads_per_block = 256;  // every block-reducing kernel assumes exactly this
constexpr int warps_per_block = threads_per_block / 32;

struct DoublePair {
    double first, second;
};

inline __device__ DoublePair warp_sum(DoublePair value) {
    for (int offset = 16; offset > 0; offset /= 2) {
        value.first += __shfl_down_sync(0xffffffffu, value.first, offset);
        value.second += __shfl_down_sync(0xffffffffu, value.second, offset);
    }
    return value;
}

// Sum over the block (blockDim.x == threads_per_block), in a fixed order, so results do not
// change from run to run. The total is valid in thread 0. Every thread must call it; it ends with
// a barrier, so it can be called again at once.
inline __device__ DoublePair block_sum(DoublePair value) {
    __shared__ DoublePair per_warp[warps_per_block];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    value = warp_sum(value);
    if (lane == 0) per_warp[warp] = value;
    __syncthreads();
    DoublePair total{0.0, 0.0};
    if (warp == 0) total = warp_sum(lane < warps_per_block ? per_warp[lane] : DoublePair{0.0, 0.0});
    __syncthreads();
    return total;
}

// The per-channel constants of the elementwise passes, one 16-byte load per element (group):
//   forward:  y  = (x - center) * factor + shift                (scale_a unused)
//   backward: dx = factor * dy + scale_a * (x - center) + shift  (factor = k, shift = b)
struct alignas(16) ChannelCoefficients {
    float center, factor, scale_a, shift;
};

// Saves mean and 1/sqrt(var + eps) and folds them into the running statistics, with the CPU's
// double-precision expressions (src/ops/batch_norm.cpp).
inline __device__ void finish_statistics(const BatchNormForward& a, std::int64_t c, double mean, double biased_variance,
                                  ChannelCoefficients* coefficients) {
    const float saved_mean = static_cast<float>(mean);
    const float inverse_std = static_cast<float>(1.0 / sqrt(biased_variance + a.eps));
    a.saved_mean[c] = saved_mean;
    a.saved_inverse_std[c] = inverse_std;
    const double count = static_cast<double>(a.batch * a.plane);
    if (a.running_mean) {
        float& running = a.running_mean[c * a.running_mean_stride];
        running = static_cast<float>((1.0 - a.momentum) * running + a.momentum * mean);
    }
    if (a.running_var) {
        const double unbiased_factor = count / (count - 1.0);
        float& running = a.running_var[c * a.running_var_stride];
        running = static_cast<float>((1.0 - a.momentum) * running + a.momentum * biased_variance * unbiased_factor);
    }
    if (coefficients) {
        const double weight = a.weight ? static_cast<double>(a.weight[c]) : 1.0;
        coefficients[c] = {saved_mean, static_cast<float>(static_cast<double>(inverse_std) * weight), 0.0f,
                           a.bias ? a.bias[c] : 0.0f};
    }
}

// dweight, dbias and the dx constants of one channel from sum dy and sum dy * (x - mean), as the
// CPU (src/cpu/batch_norm.cpp).
inline __device__ ChannelCoefficients finish_gradients(const BatchNormBackward& a, std::int64_t c, double sum_dy,
                                                double sum_dy_centered) {
    const double inverse_std = static_cast<double>(a.saved_inverse_std[c]);
    const double sum_dy_xhat = sum_dy_centered * inverse_std;
    if (a.dbias) a.dbias[c] = static_cast<float>(sum_dy);
    if (a.dweight) a.dweight[c] = static_cast<float>(sum_dy_xhat);
    const double k = (a.weight ? static_cast<double>(a.weight[c]) : 1.0) * inverse_std;
    double scale_a = 0.0, shift = 0.0;
    if (a.batch_statistics) {
        const double count = static_cast<double>(a.batch * a.plane);
        scale_a = -k * inverse_std * sum_dy_xhat / count;
        shift = -k * sum_dy / count;
    }
    return {a.saved_mean[c], static_cast<float>(k), static_cast<float>(scale_a), static_cast<float>(shift)};
}

inline bool backward_needs_sums(const BatchNormBackward& a) {
    return a.dweight != nullptr || a.dbias != nullptr || (a.dx != nullptr && a.batch_statistics);
}

}  // namespace cudagrad::cuda::batch_norm_detail
