// CPU kernels for 2-d pooling (the ops and their checks live in src/ops/pooling.cpp).
//
// Layout: x, dx: (planes, H, W) and y, dy: (planes, P, Q) contiguous, planes = N * C; every
// plane is pooled independently, so each kernel runs parallel_for over planes. Indices saved by
// max pooling count within a plane: h * W + w, as PyTorch's return_indices.
// Backward kernels overwrite dx entirely (no need to zero it first).
#pragma once

#include <cstdint>

namespace cudagrad::cpu {

// Window placement for max_pool2d and avg_pool2d (PyTorch, ceil_mode=False):
// output (p, q) covers input rows [p*stride_h - padding_h, ... + kernel_h) and likewise columns,
// clipped to the input; P = (H + 2*padding_h - kernel_h) / stride_h + 1.
struct Pool2dGeometry {
    std::int64_t planes = 0;
    std::int64_t input_h = 0, input_w = 0;
    std::int64_t output_h = 0, output_w = 0;
    std::int64_t kernel_h = 1, kernel_w = 1;
    std::int64_t stride_h = 1, stride_w = 1;
    std::int64_t padding_h = 0, padding_w = 0;
};

// y = the largest x in each window (padding counts as -infinity; NaN wins, as in PyTorch).
// argmax (may be null) receives the position of the first maximum in row-major window order.
template <typename T>
void max_pool2d_forward(const T* x, T* y, std::int64_t* argmax, const Pool2dGeometry& geometry);

// dx[argmax] += dy for every output; all other dx are 0.
template <typename T>
void max_pool2d_backward(const T* dy, const std::int64_t* argmax, T* dx, const Pool2dGeometry& geometry);

// y = sum of the window's input values / divisor, where divisor is the window area including
// padding (count_include_pad) or only the part inside the input.
template <typename T>
void avg_pool2d_forward(const T* x, T* y, const Pool2dGeometry& geometry, bool count_include_pad);

// dx = sum over the windows containing x of dy / divisor.
template <typename T>
void avg_pool2d_backward(const T* dy, T* dx, const Pool2dGeometry& geometry, bool count_include_pad);

// Adaptive average pooling to (output_h, output_w): output row i averages input rows
// [floor(i*H/P), ceil((i+1)*H/P)), likewise columns (windows may overlap by one).
template <typename T>
void adaptive_avg_pool2d_forward(const T* x, T* y, std::int64_t planes, std::int64_t input_h, std::int64_t input_w,
                                 std::int64_t output_h, std::int64_t output_w);
template <typename T>
void adaptive_avg_pool2d_backward(const T* dy, T* dx, std::int64_t planes, std::int64_t input_h,
                                  std::int64_t input_w, std::int64_t output_h, std::int64_t output_w);

// y[plane] = mean of the plane's plane_size values; dx = dy[plane] / plane_size.
template <typename T>
void global_avg_pool2d_forward(const T* x, T* y, std::int64_t planes, std::int64_t plane_size);
template <typename T>
void global_avg_pool2d_backward(const T* dy, T* dx, std::int64_t planes, std::int64_t plane_size);

}  // namespace cudagrad::cpu
