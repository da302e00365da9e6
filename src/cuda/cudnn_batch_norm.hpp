// cuDNN's batch normalisation (src/cuda/cudnn_batch_norm.cu): the vendor alternative to
// kernels/batch_norm.cu, chosen with implementation("batch_norm") == "cudnn". CUDA-free.
//
// Same argument structs and semantics as cuda/batch_norm.hpp, with cuDNN's requirements:
//   - weight and bias must not be null: for affine=False pass ones and zeros;
//   - the running statistics must be contiguous (stride 1) or null;
//   - backward: training only (cuDNN has no eval-mode backward; the op runs ours there), dx must
//     not be null, and eps must be the forward's.
// Each throws detail::VendorDeclined when cuDNN declines the configuration (the op then runs
// cudagrad's kernels), and cudagrad::Error for any other failure.
#pragma once

#include "cuda/batch_norm.hpp"

namespace cudagrad::cuda {

void cudnn_batch_norm_forward_training(const BatchNormForward& args);
// y from the running statistics, and the saved mean / inverse std snapshot (our small kernel:
// cuDNN's inference call saves nothing).
void cudnn_batch_norm_forward_inference(const BatchNormForward& args);
void cudnn_batch_norm_backward(const BatchNormBackward& args, double eps);

}  // namespace cudagrad::cuda
