// Softmax, log-softmax and the fused softmax cross-entropy on the GPU
// (kernels/softmax_cross_entropy.cu), float32, contiguous device arrays, launched on the current
// device's stream. CUDA-free, so the op files (plain C++) can call them. The math is
// src/cpu/loss.hpp's.
//
// Softmax runs over the middle axis of the (outer, extent, inner) view of a contiguous tensor,
// as the CPU kernels (cpu::DimensionSplit): element (o, r, i) lives at (o * extent + r) * inner + i.
// inner == 1 is the (N, classes) case ("rows"); inner > 1 is softmax over an earlier dimension.
//
// Bad labels: cross_entropy_forward does not check labels (that would need a flag copied back to
// the host, one synchronisation per training step). A label outside [0, classes) makes its row's
// loss NaN, so the mean loss is NaN, and its row of dlogits NaN: it cannot go unnoticed. Check
// labels on the host before they are copied to the device (the data loader does).
#pragma once

#include <cstdint>

namespace cudagrad::cuda {

struct SoftmaxShape {
    std::int64_t outer = 1;
    std::int64_t extent = 1;  // the softmax dimension
    std::int64_t inner = 1;
};

// What the op uses: rows go to v2 or v3 (by row count and length, see the .cu file), inner > 1
// to the column kernel (one thread per (o, i) column).
//   forward:  y = softmax(x) or log_softmax(x) along extent
//   backward: dx = y * (dy - sum dy*y)  or  dx = dy - exp(y) * sum dy   (y: the forward output)
void softmax_forward(const float* x, float* y, const SoftmaxShape& shape, bool logarithm);
void softmax_backward(const float* y, const float* y_gradient, float* x_gradient, const SoftmaxShape& shape,
                      bool logarithm);

// The ladder for rows (x: (rows, extent)), each version selectable for tests and benchmarks.
//   v1: one thread per row (readable; uncoalesced: a warp's 32 loads touch 32 rows)
//   v2: one warp per row, reductions with warp shuffles (many rows)
//   v3: one block of 256 threads per row, shuffles then shared memory (few or long rows)
void softmax_forward_v1_thread_per_row(const float* x, float* y, std::int64_t rows, std::int64_t extent,
                                       bool logarithm);
void softmax_forward_v2_warp_per_row(const float* x, float* y, std::int64_t rows, std::int64_t extent,
                                     bool logarithm);
void softmax_forward_v3_block_per_row(const float* x, float* y, std::int64_t rows, std::int64_t extent,
                                      bool logarithm);
void softmax_backward_v1_thread_per_row(const float* y, const float* y_gradient, float* x_gradient,
                                        std::int64_t rows, std::int64_t extent, bool logarithm);
void softmax_backward_v2_warp_per_row(const float* y, const float* y_gradient, float* x_gradient,
                                      std::int64_t rows, std::int64_t extent, bool logarithm);
void softmax_backward_v3_block_per_row(const float* y, const float* y_gradient, float* x_gradient,
                                       std::int64_t rows, std::int64_t extent, bool logarithm);

// Fused softmax cross-entropy with label smoothing e, logits (batch, classes), labels (batch)
// int64, all on the device:
//   loss[n] = (1 - e) * (lse[n] - logits[n, label[n]]) + e * (lse[n] - mean_c logits[n, c])
//   *loss   = mean_n loss[n]            (one float on the device; no host synchronisation)
// Scratch and saved state, device memory the caller owns:
//   row_max, row_log_sum: (batch) floats each, kept for backward: lse[n] = row_max[n] + row_log_sum[n]
//   row_loss: (batch) doubles, the per-row terms, summed by one block in a fixed order
//             (deterministic: no atomics)
void cross_entropy_forward(const float* logits, const std::int64_t* labels, std::int64_t batch,
                           std::int64_t classes, double label_smoothing, float* row_max, float* row_log_sum,
                           double* row_loss, float* loss);

// dlogits[n, c] = (upstream / batch) * (softmax[n, c] - e / classes - (1 - e) * [c == label[n]]),
// upstream: the one-float gradient of the loss, read on the device (no item(), no host sync).
void cross_entropy_backward(const float* logits, const std::int64_t* labels, const float* row_max,
                            const float* row_log_sum, std::int64_t batch, std::int64_t classes,
                            double label_smoothing, const float* upstream, float* logits_gradient);

}  // namespace cudagrad::cuda
