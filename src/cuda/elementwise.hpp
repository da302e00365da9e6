// Elementwise float32 kernels on contiguous device arrays (kernels/elementwise.cu), launched on
// the current device's stream. CUDA-free, so the op files (plain C++) can call them.
//
// `y` may be the same array as an input (in-place use: every element is read before the same
// thread writes it); it must not partially overlap one. `count` may be 0 (nothing is launched).
#pragma once

#include <cstdint>

namespace cudagrad::cuda {

// y = x < 0 ? 0 : x (a NaN passes through, as the CPU op).
void relu_forward(const float* x, float* y, std::int64_t count);
// dx = dy where y > 0, else 0 (uses the output y, as the CPU version).
void relu_backward(const float* y, const float* output_gradient, float* input_gradient, std::int64_t count);

// The ladder behind relu_forward, selectable for tests and benchmarks:
//   v1: one element per thread, one block per 256 elements (the textbook kernel)
//   v2: a grid-stride loop over float4 (16-byte) loads and stores when every pointer is 16-byte
//       aligned, then a scalar tail; scalar grid-stride when a pointer is not aligned. The one
//       relu_forward and every other function here use.
void relu_forward_v1_one_per_thread(const float* x, float* y, std::int64_t count);
void relu_forward_v2_grid_stride_float4(const float* x, float* y, std::int64_t count);

enum class BinaryOp { Add, Sub, Mul };
void binary(BinaryOp op, const float* a, const float* b, float* y, std::int64_t count);
void scale(const float* x, float factor, float* y, std::int64_t count);    // y = factor * x
void add_scalar(const float* x, float value, float* y, std::int64_t count);  // y = x + value
void axpy(float alpha, const float* x, float* y, std::int64_t count);       // y += alpha * x

}  // namespace cudagrad::cuda
