// CPU kernels for 2-d batch normalisation: see batch_norm.hpp for the math and the layout.
//
// What limits the speed: memory traffic. Per element the forward reads x three times (two
// statistics passes, one normalisation pass; the second and third usually hit the cache, since
// one channel of a ResNet batch is a few hundred KB at most) and writes y once; the backward
// reads dy and x twice and writes dx once. That is a few nanoseconds per element on one core,
// so all loops are written to vectorise: contiguous runs of `plane` elements, per-channel
// constants hoisted out of the inner loop, and reductions split over eight partial sums, which
// GCC keeps in vector registers (a single running sum is a dependency chain it may not reorder
// without -ffast-math).
#include "cpu/batch_norm.hpp"

#include <algorithm>

#include "cpu/parallel.hpp"

namespace cudagrad::cpu {
namespace {

constexpr int kLanes = 8;
// A chunk of parallel_for should hold at least this many elements; below that, waking a
// worker costs more than the work.
constexpr std::int64_t kMinimumElementsPerChunk = 32768;

std::int64_t channels_per_chunk(std::int64_t elements_per_channel) {
    return std::max<std::int64_t>(1, kMinimumElementsPerChunk / std::max<std::int64_t>(1, elements_per_channel));
}

// sum of values[0 .. count), in double.
template <typename T>
double sum_of(const T* values, std::int64_t count) {
    double partial[kLanes] = {};
    std::int64_t i = 0;
    for (; i + kLanes <= count; i += kLanes) {
        for (int lane = 0; lane < kLanes; ++lane) partial[lane] += static_cast<double>(values[i + lane]);
    }
    double total = 0.0;
    for (; i < count; ++i) total += static_cast<double>(values[i]);
    for (int lane = 0; lane < kLanes; ++lane) total += partial[lane];
    return total;
}

// sum of (values[i] - center)^2, in double.
template <typename T>
double sum_of_squared_deviations(const T* values, std::int64_t count, double center) {
    double partial[kLanes] = {};
    std::int64_t i = 0;
    for (; i + kLanes <= count; i += kLanes) {
        for (int lane = 0; lane < kLanes; ++lane) {
            const double deviation = static_cast<double>(values[i + lane]) - center;
            partial[lane] += deviation * deviation;
        }
    }
    double total = 0.0;
    for (; i < count; ++i) {
        const double deviation = static_cast<double>(values[i]) - center;
        total += deviation * deviation;
    }
    for (int lane = 0; lane < kLanes; ++lane) total += partial[lane];
    return total;
}

// Adds sum dy and sum dy * (x - center) over count elements to the two totals.
template <typename T>
void add_gradient_sums(const T* dy, const T* x, std::int64_t count, double center, double& sum_dy,
                       double& sum_dy_centered) {
    double partial_dy[kLanes] = {};
    double partial_dy_centered[kLanes] = {};
    std::int64_t i = 0;
    for (; i + kLanes <= count; i += kLanes) {
        for (int lane = 0; lane < kLanes; ++lane) {
            const double gradient = static_cast<double>(dy[i + lane]);
            partial_dy[lane] += gradient;
            partial_dy_centered[lane] += gradient * (static_cast<double>(x[i + lane]) - center);
        }
    }
    for (; i < count; ++i) {
        const double gradient = static_cast<double>(dy[i]);
        sum_dy += gradient;
        sum_dy_centered += gradient * (static_cast<double>(x[i]) - center);
    }
    for (int lane = 0; lane < kLanes; ++lane) {
        sum_dy += partial_dy[lane];
        sum_dy_centered += partial_dy_centered[lane];
    }
}

}  // namespace

template <typename T>
void batch_norm_statistics(const T* x, std::int64_t batch, std::int64_t channels, std::int64_t plane,
                           double* mean, double* biased_variance) {
    const std::int64_t count = batch * plane;
    parallel_for(0, channels, channels_per_chunk(count), [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t c = first; c < last; ++c) {
            double total = 0.0;
            for (std::int64_t n = 0; n < batch; ++n) total += sum_of(x + (n * channels + c) * plane, plane);
            const double channel_mean = total / static_cast<double>(count);
            double squares = 0.0;
            for (std::int64_t n = 0; n < batch; ++n) {
                squares += sum_of_squared_deviations(x + (n * channels + c) * plane, plane, channel_mean);
            }
            mean[c] = channel_mean;
            biased_variance[c] = squares / static_cast<double>(count);
        }
    });
}

template <typename T>
void batch_norm_forward(const T* x, const T* mean, const T* inverse_std, const T* weight, const T* bias, T* y,
                        std::int64_t batch, std::int64_t channels, std::int64_t plane) {
    parallel_for(0, channels, channels_per_chunk(batch * plane), [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t c = first; c < last; ++c) {
            // (x - mean) first, in T: for x close to a large mean the subtraction is exact, where
            // a folded x * scale + shift would cancel digits.
            const T center = mean[c];
            const T factor = static_cast<T>(static_cast<double>(inverse_std[c]) *
                                            (weight ? static_cast<double>(weight[c]) : 1.0));
            const T shift = bias ? bias[c] : T(0);
            for (std::int64_t n = 0; n < batch; ++n) {
                const T* input = x + (n * channels + c) * plane;
                T* output = y + (n * channels + c) * plane;
                for (std::int64_t i = 0; i < plane; ++i) output[i] = (input[i] - center) * factor + shift;
            }
        }
    });
}

template <typename T>
void batch_norm_backward(const T* dy, const T* x, const T* mean, const T* inverse_std, const T* weight,
                         bool batch_statistics, T* dx, T* dweight, T* dbias, std::int64_t batch,
                         std::int64_t channels, std::int64_t plane) {
    const std::int64_t count = batch * plane;
    const bool need_sums = dweight != nullptr || dbias != nullptr || (dx != nullptr && batch_statistics);
    parallel_for(0, channels, channels_per_chunk(count), [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t c = first; c < last; ++c) {
            const double channel_mean = static_cast<double>(mean[c]);
            const double channel_inverse_std = static_cast<double>(inverse_std[c]);
            double sum_dy = 0.0, sum_dy_centered = 0.0;
            if (need_sums) {
                for (std::int64_t n = 0; n < batch; ++n) {
                    const std::int64_t start = (n * channels + c) * plane;
                    add_gradient_sums(dy + start, x + start, plane, channel_mean, sum_dy, sum_dy_centered);
                }
            }
            const double sum_dy_xhat = sum_dy_centered * channel_inverse_std;
            if (dbias) dbias[c] = static_cast<T>(sum_dy);
            if (dweight) dweight[c] = static_cast<T>(sum_dy_xhat);
            if (!dx) continue;

            // dx = k dy + a (x - mean) + b: the formula in the header with the per-channel
            // constants folded, so the inner loop is one fused multiply-add chain.
            const double k = (weight ? static_cast<double>(weight[c]) : 1.0) * channel_inverse_std;
            double a = 0.0, b = 0.0;
            if (batch_statistics) {
                a = -k * channel_inverse_std * sum_dy_xhat / static_cast<double>(count);
                b = -k * sum_dy / static_cast<double>(count);
            }
            const T k_t = static_cast<T>(k), a_t = static_cast<T>(a), b_t = static_cast<T>(b);
            const T center = mean[c];
            for (std::int64_t n = 0; n < batch; ++n) {
                const std::int64_t start = (n * channels + c) * plane;
                const T* gradient = dy + start;
                const T* input = x + start;
                T* output = dx + start;
                for (std::int64_t i = 0; i < plane; ++i) {
                    output[i] = k_t * gradient[i] + a_t * (input[i] - center) + b_t;
                }
            }
        }
    });
}

template void batch_norm_statistics<float>(const float*, std::int64_t, std::int64_t, std::int64_t, double*,
                                           double*);
template void batch_norm_statistics<double>(const double*, std::int64_t, std::int64_t, std::int64_t, double*,
                                            double*);
template void batch_norm_forward<float>(const float*, const float*, const float*, const float*, const float*,
                                        float*, std::int64_t, std::int64_t, std::int64_t);
template void batch_norm_forward<double>(const double*, const double*, const double*, const double*,
                                         const double*, double*, std::int64_t, std::int64_t, std::int64_t);
template void batch_norm_backward<float>(const float*, const float*, const float*, const float*, const float*,
                                         bool, float*, float*, float*, std::int64_t, std::int64_t, std::int64_t);
template void batch_norm_backward<double>(const double*, const double*, const double*, const double*,
                                          const double*, bool, double*, double*, double*, std::int64_t,
                                          std::int64_t, std::int64_t);

}  // namespace cudagrad::cpu
