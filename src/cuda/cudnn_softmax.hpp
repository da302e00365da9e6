// Softmax and log-softmax through cuDNN (src/cuda/cudnn_softmax.cu): the vendor version of
// softmax_forward/softmax_backward in softmax_cross_entropy.hpp, same arguments, same math.
// Chosen when implementation("softmax") == "cudnn" (the default); the op wraps it in
// detail::run_with_fallback, so a configuration cuDNN declines (detail::VendorDeclined, e.g. a
// dimension beyond int range) runs cudagrad's kernel instead. CUDA-free.
#pragma once

#include "cuda/softmax_cross_entropy.hpp"

namespace cudagrad::cuda {

void cudnn_softmax_forward(const float* x, float* y, const SoftmaxShape& shape, bool logarithm);
void cudnn_softmax_backward(const float* y, const float* y_gradient, float* x_gradient, const SoftmaxShape& shape,
                            bool logarithm);

}  // namespace cudagrad::cuda
