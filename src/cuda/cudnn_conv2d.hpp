// conv2d with cuDNN (src/cuda/cudnn_conv2d.cu), the vendor implementation ("cudnn" in the
// registry). CUDA-free, so the op and the benchmarks can call it with raw device pointers.
//
// Shapes and formulas: cuda/conv2d.hpp. The precision is explicit (the op passes math_mode()):
//   FP32  float data, CUDNN_FMA_MATH: no tensor cores, no TF32, plain fp32 FMAs
//   TF32  float data, CUDNN_DEFAULT_MATH: cuDNN may run TF32 tensor-core kernels (sm_80+)
//   BF16  x and w converted to bfloat16 temporaries, the bf16 "pseudo" configuration (bf16
//         tensors, fp32 compute type, tensor ops), y / dx / dw computed in bf16 and converted
//         back to float. Where cuDNN's legacy API has no bf16 NCHW algorithm for a shape, these
//         functions throw detail::VendorDeclined (cuda::conv2d_* with "cudnn" then runs TF32
//         and says so once).
// Each function throws detail::VendorDeclined when cuDNN cannot run the configuration (no
// algorithm within the workspace limit, CUDNN_STATUS_NOT_SUPPORTED): the op then runs one of
// cudagrad's kernels. All work is queued on the current device's stream.
#pragma once

#include <cstddef>
#include <string>

#include "cuda/conv2d.hpp"
#include "cudagrad/registry.hpp"

namespace cudagrad::cuda {

void cudnn_conv2d_forward(const ConvProblem& problem, MathMode mode, const float* x, const float* w, float* y);
void cudnn_conv2d_backward_data(const ConvProblem& problem, MathMode mode, const float* dy, const float* w,
                                float* dx);
void cudnn_conv2d_backward_weight(const ConvProblem& problem, MathMode mode, const float* x, const float* dy,
                                  float* dw);

// The algorithm chosen for a problem, pass and precision (with the current deterministic()
// setting) by an earlier call, e.g. "IMPLICIT_PRECOMP_GEMM, tensor ops, 0 MiB workspace";
// "not searched yet" or "no algorithm" otherwise. For benchmark labels and logs.
std::string cudnn_conv2d_choice(const ConvProblem& problem, ConvPass pass, MathMode mode);

// The most workspace an algorithm may use: CUDAGRAD_CUDNN_WORKSPACE_MB (MiB), default 512 MiB.
std::size_t cudnn_workspace_limit_bytes();

}  // namespace cudagrad::cuda
