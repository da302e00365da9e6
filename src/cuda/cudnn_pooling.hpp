// cuDNN's max and average pooling (src/cuda/cudnn_pooling.cu): the vendor alternative to
// kernels/pooling.cu, chosen with implementation("max_pool") / implementation("avg_pool") ==
// "cudnn". CUDA-free. Geometry and layout as cuda/pooling.hpp.
//
// cuDNN's backward takes x and y as well as dy (it finds the maximum again instead of saving an
// index). Tie-breaking: where a window holds its maximum more than once, which position cuDNN
// sends the gradient to is not documented; cudagrad's own kernel and the CPU send it to the first
// in row-major window order. The tests compare cuDNN only on inputs without ties.
// Throws detail::VendorDeclined when cuDNN declines the configuration.
#pragma once

#include "cuda/pooling.hpp"

namespace cudagrad::cuda {

void cudnn_max_pool2d_forward(const float* x, float* y, const PoolGeometry& geometry);
void cudnn_max_pool2d_backward(const float* x, const float* y, const float* dy, float* dx,
                               const PoolGeometry& geometry);
void cudnn_avg_pool2d_forward(const float* x, float* y, const PoolGeometry& geometry, bool count_include_pad);
void cudnn_avg_pool2d_backward(const float* x, const float* y, const float* dy, float* dx,
                               const PoolGeometry& geometry, bool count_include_pad);

}  // namespace cudagrad::cuda
