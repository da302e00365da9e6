// The GPU path of conv2d (src/ops/conv2d_cuda.cpp), called by src/ops/conv2d.cpp when the input
// is on a GPU. Only in builds with CUDA. Inputs are contiguous float32 tensors on one device;
// the implementation is implementation("conv2d") (registry.hpp), with cuDNN falling back to
// cudagrad's kernels where it declines a configuration.
#pragma once

#ifdef CUDAGRAD_WITH_CUDA

#include "cpu/conv2d.hpp"
#include "cudagrad/tensor.hpp"

namespace cudagrad::detail {

// y = conv(x, weight) + bias (bias may be undefined): (N, K, P, Q).
Tensor conv2d_forward_cuda(const cpu::ConvGeometry& geometry, const Tensor& x, const Tensor& weight,
                           const Tensor& bias);
// dx: (N, C, H, W) from dy: (N, K, P, Q) and the weight.
Tensor conv2d_backward_data_cuda(const cpu::ConvGeometry& geometry, const Tensor& dy, const Tensor& weight);
// dweight: (K, C/groups, R, S) from x and dy.
Tensor conv2d_backward_weight_cuda(const cpu::ConvGeometry& geometry, const Tensor& x, const Tensor& dy);
// dbias: (K), the sum of dy over (N, P, Q).
Tensor conv2d_backward_bias_cuda(const cpu::ConvGeometry& geometry, const Tensor& dy);

}  // namespace cudagrad::detail

#endif  // CUDAGRAD_WITH_CUDA
