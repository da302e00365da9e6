// Elementwise float32 kernels on contiguous device arrays (kernels/elementwise.cu), launched on
// the current device's stream. CUDA-free, so the op files (plain C++) can call them.
#pragma once

#include <cstdint>

namespace cudagrad::cuda {

void relu_forward(const float* x, float* y, std::int64_t count);
// dx = dy where y > 0, else 0 (uses the output y, as the CPU version).
void relu_backward(const float* y, const float* output_gradient, float* input_gradient, std::int64_t count);

enum class BinaryOp { Add, Sub, Mul };
void binary(BinaryOp op, const float* a, const float* b, float* y, std::int64_t count);
void scale(const float* x, float factor, float* y, std::int64_t count);    // y = factor * x
void add_scalar(const float* x, float value, float* y, std::int64_t count);  // y = x + value
void axpy(float alpha, const float* x, float* y, std::int64_t count);       // y += alpha * x

}  // namespace cudagrad::cuda
