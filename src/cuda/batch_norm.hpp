// Batch normalisation kernels for float32 device arrays (kernels/batch_norm.cu), launched on
// the current device's stream. CUDA-free, so the op file (src/ops/batch_norm.cpp) can call them.
//
// Layout as the CPU kernels (src/cpu/batch_norm.hpp): x, y, dy, dx: (N, C, H, W) contiguous,
// seen as (batch, channels, plane) with plane = H * W; per-channel vectors: (C). The running
// statistics may be strided 1-d views (element c at running_mean[c * running_mean_stride]).
//
// The math, and the CPU reference every kernel must match, are in kernels/batch_norm.cu.
#pragma once

#include <cstdint>

namespace cudagrad::cuda {

struct BatchNormForward {
    const float* x = nullptr;     // (N, C, plane)
    float* y = nullptr;           // (N, C, plane), written
    const float* weight = nullptr;  // (C), or null for 1 (affine=False)
    const float* bias = nullptr;    // (C), or null for 0
    float* saved_mean = nullptr;         // (C), written: the mean the forward normalised with
    float* saved_inverse_std = nullptr;  // (C), written: 1 / sqrt(variance + eps)
    // Training: updated in place when not null. Eval: read (both required).
    float* running_mean = nullptr;
    std::int64_t running_mean_stride = 1;
    float* running_var = nullptr;
    std::int64_t running_var_stride = 1;
    double momentum = 0.1;
    double eps = 1e-5;
    std::int64_t batch = 0, channels = 0, plane = 0;
};

struct BatchNormBackward {
    const float* dy = nullptr;  // (N, C, plane)
    const float* x = nullptr;   // (N, C, plane): the forward's input
    const float* saved_mean = nullptr;         // (C), from the forward
    const float* saved_inverse_std = nullptr;  // (C), from the forward
    const float* weight = nullptr;             // (C), or null for 1
    bool batch_statistics = true;  // training (three-term dx) or eval (affine dx)
    float* dx = nullptr;       // each of the three may be null when not needed
    float* dweight = nullptr;
    float* dbias = nullptr;
    std::int64_t batch = 0, channels = 0, plane = 0;
};

// Device scratch the kernels below need, in bytes, for this shape on the current device (per-
// channel coefficients and per-block partial sums). Pass at least this much, 16-byte aligned.
std::int64_t batch_norm_scratch_bytes(std::int64_t batch, std::int64_t channels, std::int64_t plane);

// ---- training forward: statistics, running-statistics update, y ----
// v1: one block per channel, textbook two passes (mean, then centred squares) and a third pass
// for y: simple, but few big channels leave most SMs idle and tiny planes most threads.
void batch_norm_forward_training_v1_block_per_channel(const BatchNormForward& args);
// v2: each channel split over several blocks (one pass of shifted sums in double), a warp per
// channel combines the partial sums, then an elementwise pass with float4 loads when it can.
void batch_norm_forward_training_v2_split_channels(const BatchNormForward& args, void* scratch,
                                                   std::int64_t scratch_bytes);
// The version the op uses.
void batch_norm_forward_training(const BatchNormForward& args, void* scratch, std::int64_t scratch_bytes);

// ---- eval forward: saved statistics from the running ones (a snapshot), then y ----
void batch_norm_forward_inference(const BatchNormForward& args, void* scratch, std::int64_t scratch_bytes);
// Only the snapshot: saved_mean = running_mean, saved_inverse_std = 1/sqrt(running_var + eps)
// (for the cuDNN eval forward, which computes y but saves nothing).
void batch_norm_save_running_statistics(const BatchNormForward& args);

// ---- backward: dweight = sum dy * xhat, dbias = sum dy, dx (three-term or affine) ----
void batch_norm_backward_v1_block_per_channel(const BatchNormBackward& args);
void batch_norm_backward_v2_split_channels(const BatchNormBackward& args, void* scratch,
                                           std::int64_t scratch_bytes);
void batch_norm_backward(const BatchNormBackward& args, void* scratch, std::int64_t scratch_bytes);

// counter[0] += 1 on the device (num_batches_tracked when it lives on the GPU): one thread.
void increment_int64_counter(std::int64_t* counter);

}  // namespace cudagrad::cuda
