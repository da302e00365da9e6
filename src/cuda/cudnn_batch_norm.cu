// Batch normalisation by cuDNN (legacy API, CUDNN_BATCHNORM_SPATIAL: statistics per channel over
// N, H, W), the vendor counterpart of kernels/batch_norm.cu. See cudnn_batch_norm.hpp for the contract.
//
// How cuDNN's arguments map onto PyTorch's semantics (the tests check each against the CPU op):
//   - exponentialAverageFactor is the momentum: running = (1 - f) running + f batch_statistic.
//   - the running variance receives the UNBIASED batch variance (times M / (M - 1)), as PyTorch,
//     while y is normalised with the biased one. (That is what PyTorch's cuDNN path relies on;
//     cuDNN's header only says "moving average of variance".)
//   - resultSaveInvVariance is, despite its name, 1 / sqrt(var + eps): the same inverse standard
//     deviation our kernels save, so a backward can use the saved values of either forward.
//   - epsilon must be >= CUDNN_BN_MIN_EPSILON (0 in cuDNN 9; smaller values are declined, and the
//     op checked eps >= 0 already).
//   - bnScale and bnBias are required: affine=False means ones and zeros (the op passes them).
//   - running mean and variance: both or neither; when only one is tracked, cuDNN updates a
//     scratch copy of the other, which is dropped.
// SPATIAL and not SPATIAL_PERSISTENT: the persistent variant is faster on some shapes, but cuDNN
// documents that it may overflow for large input ranges.
// Tensors are described as (N, C, H*W, 1): the same packed NCHW memory, and the op only knows the plane.
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdint>
#include <string>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/cudnn_batch_norm.hpp"
#include "cuda/cudnn_descriptors.hpp"

namespace cudagrad::cuda {
namespace {

constexpr const char* kOp = "batch_norm2d (cuDNN)";

// cuDNN's legacy descriptors take int sizes: a tensor beyond them is declined, not an error.
void set_4d(const TensorDescriptor& descriptor, std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w) {
    decline_beyond_int({n, c, h, w, n * c * h * w}, [&] {
        return std::string(kOp) + ": tensor (" + std::to_string(n) + ", " + std::to_string(c) + ", " +
               std::to_string(h) + ", " + std::to_string(w) + ") is too large for cuDNN's int descriptors";
    });
    set_nchw(descriptor, static_cast<int>(n), static_cast<int>(c), static_cast<int>(h), static_cast<int>(w));
}

struct Descriptors {
    TensorDescriptor data;     // x, y, dy, dx
    TensorDescriptor channel;  // weight, bias, running and saved statistics: (1, C, 1, 1)
    Descriptors(std::int64_t batch, std::int64_t channels, std::int64_t plane) {
        set_4d(data, batch, channels, plane, 1);
        set_4d(channel, 1, channels, 1, 1);
    }
};

void check_epsilon(double eps) {
    if (eps < CUDNN_BN_MIN_EPSILON) {
        throw detail::VendorDeclined(std::string(kOp) + ": eps " + std::to_string(eps) +
                                     " is below CUDNN_BN_MIN_EPSILON");
    }
}

void check_common(const BatchNormForward& a) {
    check(a.weight != nullptr && a.bias != nullptr, kOp, "needs weight and bias (ones and zeros for affine=False)");
    check(a.running_mean == nullptr || a.running_mean_stride == 1, kOp, "running_mean must be contiguous");
    check(a.running_var == nullptr || a.running_var_stride == 1, kOp, "running_var must be contiguous");
    check_epsilon(a.eps);
}

}  // namespace

void cudnn_batch_norm_forward_training(const BatchNormForward& a) {
    check_common(a);
    const Descriptors descriptors(a.batch, a.channels, a.plane);
    float* running_mean = a.running_mean;
    float* running_var = a.running_var;
    if ((running_mean == nullptr) != (running_var == nullptr)) {
        auto* spare = static_cast<float*>(workspace(static_cast<std::size_t>(a.channels) * sizeof(float)));
        if (running_mean == nullptr) running_mean = spare;
        if (running_var == nullptr) running_var = spare;
    }
    const float one = 1.0f, zero = 0.0f;
    CUDAGRAD_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
        current_context().cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, descriptors.data.get(), a.x,
        descriptors.data.get(), a.y, descriptors.channel.get(), a.weight, a.bias, a.momentum, running_mean,
        running_var, a.eps, a.saved_mean, a.saved_inverse_std));
}

void cudnn_batch_norm_forward_inference(const BatchNormForward& a) {
    check_common(a);
    check(a.running_mean != nullptr && a.running_var != nullptr, kOp, "eval mode needs running_mean and running_var");
    const Descriptors descriptors(a.batch, a.channels, a.plane);
    const float one = 1.0f, zero = 0.0f;
    CUDAGRAD_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
        current_context().cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, descriptors.data.get(), a.x,
        descriptors.data.get(), a.y, descriptors.channel.get(), a.weight, a.bias, a.running_mean, a.running_var,
        a.eps));
    batch_norm_save_running_statistics(a);
}

void cudnn_batch_norm_backward(const BatchNormBackward& a, double eps) {
    check(a.batch_statistics, kOp, "cuDNN's backward is for training mode only");
    check(a.dx != nullptr && a.weight != nullptr, kOp, "backward needs dx and weight (ones for affine=False)");
    check_epsilon(eps);
    const Descriptors descriptors(a.batch, a.channels, a.plane);
    float* dweight = a.dweight;
    float* dbias = a.dbias;
    if (dweight == nullptr || dbias == nullptr) {  // cuDNN always writes both
        auto* spare = static_cast<float*>(workspace(2 * static_cast<std::size_t>(a.channels) * sizeof(float)));
        if (dweight == nullptr) dweight = spare;
        if (dbias == nullptr) dbias = spare + a.channels;
    }
    const float one = 1.0f, zero = 0.0f;
    CUDAGRAD_CUDNN_CHECK(cudnnBatchNormalizationBackward(
        current_context().cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, descriptors.data.get(), a.x,
        descriptors.data.get(), a.dy, descriptors.data.get(), a.dx, descriptors.channel.get(), a.weight, dweight,
        dbias, eps, a.saved_mean, a.saved_inverse_std));
}

}  // namespace cudagrad::cuda
