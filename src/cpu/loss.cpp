// CPU softmax, log-softmax and cross-entropy kernels: see loss.hpp for the math.
//
// Two layouts, one kernel each:
//   rows (inner == 1): softmax over the last dimension, the (N, classes) case. Each row is
//     contiguous: three passes over it (max, exp-and-sum, normalise).
//   columns (inner > 1): softmax over an earlier dimension (dim 0 of (N, C), or channels of
//     NCHW). The same three passes, but each pass walks whole rows of `inner` contiguous values
//     and keeps `inner` running maxima and sums, so the inner loops stay contiguous (the max and
//     normalise passes vectorize) instead of striding by `inner` through memory.
#include "cpu/loss.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/elementwise.hpp"

namespace cudagrad::cpu {
namespace {

// exp() costs ~20x an add: a chunk of 8k exps (~40 us) pays for waking a thread.
constexpr std::int64_t exp_grain_size = 8192;

std::int64_t grain_for(std::int64_t work_per_task) {
    return std::max<std::int64_t>(1, exp_grain_size / std::max<std::int64_t>(work_per_task, 1));
}

template <typename T, bool logarithm> void softmax_rows(const T* x, T* y, std::int64_t rows, std::int64_t extent) {
    parallel_over_range(rows, grain_for(extent), [=](std::int64_t begin, std::int64_t end) {
        for (std::int64_t row = begin; row < end; ++row) {
            const T* input = x + row * extent;
            T* output = y + row * extent;
            T maximum = input[0];
            for (std::int64_t r = 1; r < extent; ++r) maximum = input[r] > maximum ? input[r] : maximum;
            double total = 0.0;
            for (std::int64_t r = 0; r < extent; ++r) {
                const T value = std::exp(input[r] - maximum);
                if constexpr (!logarithm) output[r] = value;
                total += static_cast<double>(value);
            }
            if constexpr (logarithm) {
                const T log_total = static_cast<T>(std::log(total));
                for (std::int64_t r = 0; r < extent; ++r) output[r] = (input[r] - maximum) - log_total;
            } else {
                const T inverse = static_cast<T>(1.0 / total);
                for (std::int64_t r = 0; r < extent; ++r) output[r] *= inverse;
            }
        }
    });
}

template <typename T, bool logarithm> void softmax_columns(const T* x, T* y, const DimensionSplit& split) {
    const std::int64_t extent = split.extent, inner = split.inner;
    parallel_over_range(split.outer, grain_for(extent * inner), [=](std::int64_t begin, std::int64_t end) {
        std::vector<T> maxima(static_cast<std::size_t>(inner));
        std::vector<double> totals(static_cast<std::size_t>(inner));
        std::vector<T> factors(static_cast<std::size_t>(inner));
        for (std::int64_t o = begin; o < end; ++o) {
            const T* input = x + o * extent * inner;
            T* output = y + o * extent * inner;
            std::copy(input, input + inner, maxima.begin());
            for (std::int64_t r = 1; r < extent; ++r) {
                const T* row = input + r * inner;
                for (std::int64_t i = 0; i < inner; ++i) maxima[i] = row[i] > maxima[i] ? row[i] : maxima[i];
            }
            std::fill(totals.begin(), totals.end(), 0.0);
            for (std::int64_t r = 0; r < extent; ++r) {
                const T* row = input + r * inner;
                T* output_row = output + r * inner;
                for (std::int64_t i = 0; i < inner; ++i) {
                    const T value = std::exp(row[i] - maxima[i]);
                    if constexpr (!logarithm) output_row[i] = value;
                    totals[i] += static_cast<double>(value);
                }
            }
            for (std::int64_t i = 0; i < inner; ++i) {
                factors[i] = static_cast<T>(logarithm ? std::log(totals[i]) : 1.0 / totals[i]);
            }
            for (std::int64_t r = 0; r < extent; ++r) {
                const T* row = input + r * inner;
                T* output_row = output + r * inner;
                for (std::int64_t i = 0; i < inner; ++i) {
                    if constexpr (logarithm) {
                        output_row[i] = (row[i] - maxima[i]) - factors[i];
                    } else {
                        output_row[i] *= factors[i];
                    }
                }
            }
        }
    });
}

// softmax:     dx = y * (g - sum g*y)          log_softmax: dx = g - exp(y) * sum g
template <typename T, bool logarithm>
void softmax_backward_rows(const T* y, const T* g, T* dx, std::int64_t rows, std::int64_t extent) {
    parallel_over_range(rows, grain_for(extent), [=](std::int64_t begin, std::int64_t end) {
        for (std::int64_t row = begin; row < end; ++row) {
            const T* output = y + row * extent;
            const T* gradient = g + row * extent;
            T* input_gradient = dx + row * extent;
            double total = 0.0;
            for (std::int64_t r = 0; r < extent; ++r) {
                total += logarithm ? static_cast<double>(gradient[r]) : static_cast<double>(gradient[r] * output[r]);
            }
            const T reduced = static_cast<T>(total);
            for (std::int64_t r = 0; r < extent; ++r) {
                if constexpr (logarithm) {
                    input_gradient[r] = gradient[r] - std::exp(output[r]) * reduced;
                } else {
                    input_gradient[r] = output[r] * (gradient[r] - reduced);
                }
            }
        }
    });
}

template <typename T, bool logarithm>
void softmax_backward_columns(const T* y, const T* g, T* dx, const DimensionSplit& split) {
    const std::int64_t extent = split.extent, inner = split.inner;
    parallel_over_range(split.outer, grain_for(extent * inner), [=](std::int64_t begin, std::int64_t end) {
        std::vector<double> totals(static_cast<std::size_t>(inner));
        std::vector<T> reduced(static_cast<std::size_t>(inner));
        for (std::int64_t o = begin; o < end; ++o) {
            const std::int64_t base = o * extent * inner;
            std::fill(totals.begin(), totals.end(), 0.0);
            for (std::int64_t r = 0; r < extent; ++r) {
                const T* output = y + base + r * inner;
                const T* gradient = g + base + r * inner;
                for (std::int64_t i = 0; i < inner; ++i) {
                    totals[i] += logarithm ? static_cast<double>(gradient[i])
                                           : static_cast<double>(gradient[i] * output[i]);
                }
            }
            for (std::int64_t i = 0; i < inner; ++i) reduced[i] = static_cast<T>(totals[i]);
            for (std::int64_t r = 0; r < extent; ++r) {
                const T* output = y + base + r * inner;
                const T* gradient = g + base + r * inner;
                T* input_gradient = dx + base + r * inner;
                for (std::int64_t i = 0; i < inner; ++i) {
                    if constexpr (logarithm) {
                        input_gradient[i] = gradient[i] - std::exp(output[i]) * reduced[i];
                    } else {
                        input_gradient[i] = output[i] * (gradient[i] - reduced[i]);
                    }
                }
            }
        }
    });
}

}  // namespace

template <typename T> void softmax_forward(const T* x, T* y, const DimensionSplit& split) {
    if (split.inner == 1) {
        softmax_rows<T, false>(x, y, split.outer, split.extent);
    } else {
        softmax_columns<T, false>(x, y, split);
    }
}

template <typename T> void log_softmax_forward(const T* x, T* y, const DimensionSplit& split) {
    if (split.inner == 1) {
        softmax_rows<T, true>(x, y, split.outer, split.extent);
    } else {
        softmax_columns<T, true>(x, y, split);
    }
}

template <typename T>
void softmax_backward(const T* y, const T* y_gradient, T* x_gradient, const DimensionSplit& split) {
    if (split.inner == 1) {
        softmax_backward_rows<T, false>(y, y_gradient, x_gradient, split.outer, split.extent);
    } else {
        softmax_backward_columns<T, false>(y, y_gradient, x_gradient, split);
    }
}

template <typename T>
void log_softmax_backward(const T* y, const T* y_gradient, T* x_gradient, const DimensionSplit& split) {
    if (split.inner == 1) {
        softmax_backward_rows<T, true>(y, y_gradient, x_gradient, split.outer, split.extent);
    } else {
        softmax_backward_columns<T, true>(y, y_gradient, x_gradient, split);
    }
}

template <typename T>
double cross_entropy_forward(const T* logits, const std::int64_t* labels, std::int64_t batch, std::int64_t classes,
                             double label_smoothing, double* log_sum_exp) {
    std::vector<double> row_loss(static_cast<std::size_t>(batch));
    parallel_over_range(batch, grain_for(classes), [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t n = begin; n < end; ++n) {
            const T* row = logits + n * classes;
            T maximum = row[0];
            for (std::int64_t c = 1; c < classes; ++c) maximum = row[c] > maximum ? row[c] : maximum;
            double exp_total = 0.0, logit_total = 0.0;
            for (std::int64_t c = 0; c < classes; ++c) {
                exp_total += static_cast<double>(std::exp(row[c] - maximum));
                logit_total += static_cast<double>(row[c]);
            }
            const double lse = static_cast<double>(maximum) + std::log(exp_total);
            log_sum_exp[n] = lse;
            const double label_term = lse - static_cast<double>(row[labels[n]]);
            const double uniform_term = lse - logit_total / static_cast<double>(classes);
            // The uniform term only when smoothing is on: with a -inf logit (a masked class) it
            // is infinite, and e = 0 must not turn it into 0 * inf = NaN.
            row_loss[static_cast<std::size_t>(n)] =
                label_smoothing == 0.0 ? label_term
                                       : (1.0 - label_smoothing) * label_term + label_smoothing * uniform_term;
        }
    });
    double total = 0.0;  // serial, in row order: the same bits whatever the thread count
    for (double value : row_loss) total += value;
    return total / static_cast<double>(batch);
}

template <typename T>
void cross_entropy_backward(const T* logits, const std::int64_t* labels, const double* log_sum_exp,
                            std::int64_t batch, std::int64_t classes, double label_smoothing, double scale,
                            T* logits_gradient) {
    const double uniform_target = label_smoothing / static_cast<double>(classes);
    const double label_target = 1.0 - label_smoothing;
    parallel_over_range(batch, grain_for(classes), [=](std::int64_t begin, std::int64_t end) {
        for (std::int64_t n = begin; n < end; ++n) {
            const T* row = logits + n * classes;
            T* gradient = logits_gradient + n * classes;
            // In double: a float lse near 1000 keeps only ~4 decimals, and exp() would pass that
            // error straight into the probabilities.
            const double lse = log_sum_exp[n];
            for (std::int64_t c = 0; c < classes; ++c) {
                gradient[c] = static_cast<T>(scale * (std::exp(static_cast<double>(row[c]) - lse) - uniform_target));
            }
            gradient[labels[n]] -= static_cast<T>(scale * label_target);
        }
    });
}

template void softmax_forward<float>(const float*, float*, const DimensionSplit&);
template void softmax_forward<double>(const double*, double*, const DimensionSplit&);
template void log_softmax_forward<float>(const float*, float*, const DimensionSplit&);
template void log_softmax_forward<double>(const double*, double*, const DimensionSplit&);
template void softmax_backward<float>(const float*, const float*, float*, const DimensionSplit&);
template void softmax_backward<double>(const double*, const double*, double*, const DimensionSplit&);
template void log_softmax_backward<float>(const float*, const float*, float*, const DimensionSplit&);
template void log_softmax_backward<double>(const double*, const double*, double*, const DimensionSplit&);
template double cross_entropy_forward<float>(const float*, const std::int64_t*, std::int64_t, std::int64_t, double,
                                             double*);
template double cross_entropy_forward<double>(const double*, const std::int64_t*, std::int64_t, std::int64_t, double,
                                              double*);
template void cross_entropy_backward<float>(const float*, const std::int64_t*, const double*, std::int64_t,
                                            std::int64_t, double, double, float*);
template void cross_entropy_backward<double>(const double*, const std::int64_t*, const double*, std::int64_t,
                                             std::int64_t, double, double, double*);

}  // namespace cudagrad::cpu
