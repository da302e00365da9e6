// Reductions over contiguous float32 device arrays (kernels/reduction.cu), launched on the
// current device's stream. CUDA-free, so the op files (plain C++) can call them.
//
// A reduction over one dimension sees the tensor as (outer, extent, inner), as the CPU kernels
// (src/cpu/reduction.hpp): element (o, r, i) lives at (o * extent + r) * inner + i.
// Every sum accumulates in double, as the CPU, and in a fixed order (no atomics), so a result
// is the same bits from run to run on a given GPU.
#pragma once

#include <cstdint>

namespace cudagrad::cuda {

// ---- sum of all elements: two passes, block partial sums then one block adding them up.
// How many doubles of scratch sum_all needs for `count` elements (at most 1024); call on the
// device that will run sum_all, since the number of blocks depends on its SM count.
std::int64_t sum_all_partial_count(std::int64_t count);
// result[0] = float(sum of x[0 .. count) / divisor)  (divisor 1 for sum, count for mean).
// `partials` holds sum_all_partial_count(count) doubles of device scratch.
void sum_all(const float* x, std::int64_t count, double divisor, double* partials, float* result);

// y[i] = float(double(value[0]) / divisor) for i < count; value is a device scalar. The
// gradient of sum (divisor 1) and of mean (divisor numel) without reading the value on the host.
void fill_with_scalar(const float* value, double divisor, float* y, std::int64_t count);

// ---- one dimension
// y[o, i] = sum over r of x[o, r, i]   (y holds outer * inner floats)
void sum_over_dimension(const float* x, float* y, std::int64_t outer, std::int64_t extent, std::int64_t inner);
// x_gradient[o, r, i] = y_gradient[o, i]   (the gradient of sum_over_dimension)
void broadcast_over_dimension(const float* y_gradient, float* x_gradient, std::int64_t outer, std::int64_t extent,
                              std::int64_t inner);
// index[o, i] = the first r with the largest x[o, r, i]; a NaN counts as larger than any number
// (so the first NaN wins), as the CPU op. extent >= 1.
void argmax_over_dimension(const float* x, std::int64_t* index, std::int64_t outer, std::int64_t extent,
                           std::int64_t inner);
void argmax_over_dimension(const std::int64_t* x, std::int64_t* index, std::int64_t outer, std::int64_t extent,
                           std::int64_t inner);

// ---- top-k accuracy
// count[0] = the number of rows n whose label is among the k highest logits of row n, with the
// order of the evaluation code (examples/resnet50/common.cpp top_k): class c ranks before the
// label l when logits[n, c] > logits[n, l], or when they are equal and c < l; the label is a hit
// when fewer than k classes rank before it. A NaN logit counts as larger than any number (as
// argmax), NaNs tie with each other. A label outside [0, classes) is never a hit (the kernel
// cannot raise an error without a host synchronisation; cross-entropy checks labels).
// logits: (rows, classes) float32, labels: (rows) int64, count: one int64, all on the device.
// `partials` holds top_k_partial_count(rows) int64 of device scratch. k >= 1.
std::int64_t top_k_partial_count(std::int64_t rows);
void count_top_k_hits(const float* logits, const std::int64_t* labels, std::int64_t rows, std::int64_t classes,
                      std::int64_t k, std::int64_t* partials, std::int64_t* count);

}  // namespace cudagrad::cuda
