// Batch normalisation over (N, H, W) per channel: x, y, dy, dx: (N, C, H, W) contiguous, seen as
// (batch, channels, plane), plane = H * W; weight, bias, mean, inverse std: (C). M = N * plane.
//
//   training:  mean_c = sum x / M,  var_c = sum (x - mean_c)^2 / M  (biased),  inv_c = 1/sqrt(var_c + eps)
//              y = (x - mean_c) * (inv_c * weight_c) + bias_c
//              running_mean = (1 - momentum) running_mean + momentum mean_c
//              running_var  = (1 - momentum) running_var  + momentum var_c * M / (M - 1)  (unbiased)
//   eval:      the same y with running_mean and 1/sqrt(running_var + eps)
//   backward:  dbias = sum dy, dweight = sum dy * xhat  (xhat = (x - mean) * inv)
//              dx = k dy + a (x - mean) + b,  k = weight * inv, and in training
//              a = -k inv sum(dy xhat) / M, b = -k sum(dy) / M (the three-term formula); eval: a = b = 0
// CPU reference: src/cpu/batch_norm.cpp and the statistics code of src/ops/batch_norm.cpp; the
// per-channel constants (mean, 1/sqrt, running updates, k, a, b) are computed here in double
// with the same expressions, so they agree with the CPU to the last bit or two.
//
// Numerics: a channel of a ResNet batch holds up to 1.6M values (128 x 112 x 112), so every sum is
// accumulated in double (the CPU does too). v2 computes the variance in ONE pass from shifted
// sums, sum (x - K) and sum (x - K)^2 with K = the channel's first element: E[(x-K)^2] - E[x-K]^2
// only cancels digits when |mean - K| is many standard deviations, and K is a sample of the same
// channel, so that does not happen; a plain sum of x^2 would lose everything for x ~ 1e4 +- 1.
//
// Napkin math (H100, ~3.0 TB/s copy bandwidth), layer1 activation 128x256x56x56 (411 MB float32):
//   training forward: v2 reads x twice (sums, normalise) and writes y: 1.23 GB -> 0.41 ms
//                     (PyTorch/cuDNN: 0.513 ms); v1 reads x three times: 1.64 GB -> 0.55 ms at best.
//   eval forward:     reads x, writes y: 0.82 GB -> 0.27 ms.
//   backward:         reads x and dy for the sums, again for dx, writes dx: 2.06 GB -> 0.69 ms.
// The stem (128x64x112x112) is the same 411 MB in 64 channels: v1 gets 64 blocks for 132 SMs
// there, which is why v2 splits channels. layer4 (128x2048x7x7, 51 MB) has 49-element rows: v1
// leaves 207 of 256 threads idle per row; v2 walks the channel as one flat range.
//
// Ladder: v1 one block per channel (one kernel, this file); v2 split channels (partial sums, a
// warp per channel to finish, then an elementwise kernel with float4 loads when plane % 4 == 0
// and the pointers are 16-byte aligned: kernels/batch_norm_v2.cu, with the eval forward). v2 is
// what the op uses. Shared device helpers: kernels/batch_norm_common.cuh.
#include <cuda_runtime.h>

#include <cstdint>

#include "batch_norm_common.cuh"
#include "cuda/batch_norm.hpp"
#include "cuda/check.hpp"
#include "cuda/context.hpp"

namespace cudagrad::cuda {
namespace {

using namespace batch_norm_detail;

// ================================================================ v1: one block per channel

__global__ void forward_training_v1_kernel(BatchNormForward a) {
    const std::int64_t c = blockIdx.x;
    const double count = static_cast<double>(a.batch * a.plane);
    __shared__ double shared_mean;
    double sum = 0.0;
    for (std::int64_t n = 0; n < a.batch; ++n) {
        const float* row = a.x + (n * a.channels + c) * a.plane;
        for (std::int64_t i = threadIdx.x; i < a.plane; i += blockDim.x) sum += static_cast<double>(row[i]);
    }
    const DoublePair total = block_sum({sum, 0.0});
    if (threadIdx.x == 0) shared_mean = total.first / count;
    __syncthreads();
    const double mean = shared_mean;
    double squares = 0.0;
    for (std::int64_t n = 0; n < a.batch; ++n) {
        const float* row = a.x + (n * a.channels + c) * a.plane;
        for (std::int64_t i = threadIdx.x; i < a.plane; i += blockDim.x) {
            const double deviation = static_cast<double>(row[i]) - mean;
            squares += deviation * deviation;
        }
    }
    const DoublePair squares_total = block_sum({squares, 0.0});
    if (threadIdx.x == 0) finish_statistics(a, c, mean, squares_total.first / count, nullptr);
    __syncthreads();  // makes thread 0's global writes visible to the block
    const float center = a.saved_mean[c];
    const float factor = static_cast<float>(static_cast<double>(a.saved_inverse_std[c]) *
                                            (a.weight ? static_cast<double>(a.weight[c]) : 1.0));
    const float shift = a.bias ? a.bias[c] : 0.0f;
    for (std::int64_t n = 0; n < a.batch; ++n) {
        const std::int64_t start = (n * a.channels + c) * a.plane;
        for (std::int64_t i = threadIdx.x; i < a.plane; i += blockDim.x) {
            a.y[start + i] = (a.x[start + i] - center) * factor + shift;
        }
    }
}

__global__ void backward_v1_kernel(BatchNormBackward a, bool need_sums) {
    const std::int64_t c = blockIdx.x;
    __shared__ ChannelCoefficients shared;
    DoublePair sums{0.0, 0.0};
    if (need_sums) {
        const double center = static_cast<double>(a.saved_mean[c]);
        for (std::int64_t n = 0; n < a.batch; ++n) {
            const std::int64_t start = (n * a.channels + c) * a.plane;
            for (std::int64_t i = threadIdx.x; i < a.plane; i += blockDim.x) {
                const double gradient = static_cast<double>(a.dy[start + i]);
                sums.first += gradient;
                sums.second += gradient * (static_cast<double>(a.x[start + i]) - center);
            }
        }
        sums = block_sum(sums);
    }
    if (threadIdx.x == 0) shared = finish_gradients(a, c, sums.first, sums.second);
    __syncthreads();
    if (!a.dx) return;
    const ChannelCoefficients k = shared;
    for (std::int64_t n = 0; n < a.batch; ++n) {
        const std::int64_t start = (n * a.channels + c) * a.plane;
        for (std::int64_t i = threadIdx.x; i < a.plane; i += blockDim.x) {
            a.dx[start + i] = k.factor * a.dy[start + i] + k.scale_a * (a.x[start + i] - k.center) + k.shift;
        }
    }
}

__global__ void increment_kernel(std::int64_t* counter) { *counter += 1; }

}  // namespace

void batch_norm_forward_training_v1_block_per_channel(const BatchNormForward& args) {
    forward_training_v1_kernel<<<static_cast<unsigned int>(args.channels), threads_per_block, 0, current_stream()>>>(
        args);
    CUDAGRAD_LAUNCH_CHECK("forward_training_v1_kernel");
}

void batch_norm_forward_training(const BatchNormForward& args, void* scratch, std::int64_t scratch_bytes) {
    batch_norm_forward_training_v2_split_channels(args, scratch, scratch_bytes);
}

void batch_norm_backward_v1_block_per_channel(const BatchNormBackward& args) {
    backward_v1_kernel<<<static_cast<unsigned int>(args.channels), threads_per_block, 0, current_stream()>>>(
        args, backward_needs_sums(args));
    CUDAGRAD_LAUNCH_CHECK("backward_v1_kernel");
}

void batch_norm_backward(const BatchNormBackward& args, void* scratch, std::int64_t scratch_bytes) {
    batch_norm_backward_v2_split_channels(args, scratch, scratch_bytes);
}

void increment_int64_counter(std::int64_t* counter) {
    increment_kernel<<<1, 1, 0, current_stream()>>>(counter);
    CUDAGRAD_LAUNCH_CHECK("increment_kernel");
}

}  // namespace cudagrad::cuda
