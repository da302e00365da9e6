// Pooling kernels for float32 device arrays (kernels/pooling.cu), launched on the current
// device's stream. CUDA-free, so the op file (src/ops/pooling.cpp) can call them.
//
// Layout as the CPU kernels (src/cpu/pooling.hpp): x, dx: (planes, H, W) and y, dy: (planes, P, Q)
// contiguous, planes = N * C. Every backward kernel writes every element of dx (no zeroing first).
#pragma once

#include <cstdint>

namespace cudagrad::cuda {

// Window placement of max_pool2d / avg_pool2d, as cpu::Pool2dGeometry (PyTorch, ceil_mode=False):
// output (p, q) covers input rows [p*stride_h - padding_h, ... + kernel_h) clipped to the input,
// likewise columns; padding <= kernel / 2. batch and channels are kept apart for cuDNN.
struct PoolGeometry {
    std::int64_t batch = 0, channels = 0;
    std::int64_t input_h = 0, input_w = 0;
    std::int64_t output_h = 0, output_w = 0;
    std::int64_t kernel_h = 1, kernel_w = 1;
    std::int64_t stride_h = 1, stride_w = 1;
    std::int64_t padding_h = 0, padding_w = 0;
    std::int64_t planes() const { return batch * channels; }
};

// ---- max_pool2d ----
// y = max over the window (padding is -infinity, NaN wins); argmax (may be null) receives the
// position h * W + w of the FIRST maximum in row-major window order, as src/cpu/pooling.cpp. The
// indices are int32: the op checks H * W < 2^31.
void max_pool2d_forward(const float* x, float* y, std::int32_t* argmax, const PoolGeometry& geometry);
// dx[argmax] += dy. v1 zeroes dx and scatters with atomicAdd (the order of the additions, and so
// the last bits of dx where windows overlap, can change between runs); v2 gathers: each input
// element visits the few windows that cover it, in a fixed order, without atomics.
void max_pool2d_backward_v1_atomic_scatter(const float* dy, const std::int32_t* argmax, float* dx,
                                           const PoolGeometry& geometry);
void max_pool2d_backward_v2_gather(const float* dy, const std::int32_t* argmax, float* dx,
                                   const PoolGeometry& geometry);
void max_pool2d_backward(const float* dy, const std::int32_t* argmax, float* dx, const PoolGeometry& geometry);

// ---- avg_pool2d: divisor = kernel area (count_include_pad) or the window's part inside the input ----
void avg_pool2d_forward(const float* x, float* y, const PoolGeometry& geometry, bool count_include_pad);
void avg_pool2d_backward(const float* dy, float* dx, const PoolGeometry& geometry, bool count_include_pad);

// ---- adaptive_avg_pool2d: row window of output p is [floor(p*H/P), ceil((p+1)*H/P)), likewise columns ----
void adaptive_avg_pool2d_forward(const float* x, float* y, std::int64_t planes, std::int64_t input_h,
                                 std::int64_t input_w, std::int64_t output_h, std::int64_t output_w);
void adaptive_avg_pool2d_backward(const float* dy, float* dx, std::int64_t planes, std::int64_t input_h,
                                  std::int64_t input_w, std::int64_t output_h, std::int64_t output_w);

// ---- global_avg_pool2d: y[plane] = mean of the plane; dx = dy[plane] / plane_size ----
void global_avg_pool2d_forward(const float* x, float* y, std::int64_t planes, std::int64_t plane_size);
void global_avg_pool2d_backward(const float* dy, float* dx, std::int64_t planes, std::int64_t plane_size);

}  // namespace cudagrad::cuda
