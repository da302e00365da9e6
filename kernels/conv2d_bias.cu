// conv2d bias: the forward add and the gradient, shared by every conv2d implementation (the
// convolution kernels compute y = conv(x, w) only; the op adds the bias afterwards).
//
//   y: (N, K, P, Q), bias: (K)
//   forward   y[n, k, p, q] += bias[k]
//   backward  dbias[k] = sum over n, p, q of dy[n, k, p, q]
// CPU reference: src/cpu/conv2d.cpp (conv2d_backward_weight_* fill dbias the same way).
//
// Napkin math: both are memory bound. The add reads and writes y once, 8 bytes per element:
// ResNet-50's layer1 output at N=128 (K=256, 56x56, 103M elements) takes ~0.27 ms at 3 TB/s.
// ResNet-50's convolutions have no bias, so neither kernel runs in that model.
// The gradient reads dy once (4 bytes per element). One block per channel sums its N*P*Q
// values: each thread a strided partial sum, then a tree in shared memory, always in the same
// order, so the result is deterministic (no atomics). With K >= ~100 channels the blocks fill
// the GPU; for smaller K it is latency bound, still far below the convolution's cost.
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/conv2d.hpp"

namespace cudagrad::cuda {
namespace {

constexpr int threads_per_block = 256;  // a power of two: the tree below halves it

__global__ void conv2d_bias_add_kernel(const float* __restrict__ bias, float* __restrict__ y, std::int64_t count,
                                       std::int64_t plane, std::int64_t channels) {
    for (std::int64_t index = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; index < count;
         index += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        y[index] += bias[(index / plane) % channels];
    }
}

// Block k sums channel k. Launched with threads_per_block threads.
__global__ void conv2d_bias_backward_kernel(const float* __restrict__ dy, float* __restrict__ dbias,
                                            std::int64_t batch, std::int64_t plane, std::int64_t channels) {
    __shared__ float partial[threads_per_block];
    const std::int64_t k = blockIdx.x;
    const std::int64_t per_channel = batch * plane;
    float sum = 0.0f;
    // Element i of the channel is dy[n, k, pq] with n = i / plane, pq = i % plane; consecutive
    // threads read consecutive pq (coalesced).
    for (std::int64_t i = threadIdx.x; i < per_channel; i += threads_per_block) {
        const std::int64_t n = i / plane, pq = i - n * plane;
        sum += dy[(n * channels + k) * plane + pq];
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int half = threads_per_block / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) dbias[k] = partial[0];
}

}  // namespace

void conv2d_bias_add(const ConvProblem& problem, const float* bias, float* y) {
    const std::int64_t count = problem.y_count();
    if (count == 0) return;
    conv2d_bias_add_kernel<<<grid_for(count, threads_per_block), threads_per_block, 0, current_stream()>>>(
        bias, y, count, problem.P * problem.Q, problem.K);
    CUDAGRAD_LAUNCH_CHECK("conv2d_bias_add_kernel");
}

void conv2d_bias_backward(const ConvProblem& problem, const float* dy, float* dbias) {
    if (problem.K == 0) return;
    // gridDim.x may be up to 2^31 - 1, far above any channel count.
    conv2d_bias_backward_kernel<<<static_cast<unsigned int>(problem.K), threads_per_block, 0, current_stream()>>>(
        dy, dbias, problem.N, problem.P * problem.Q, problem.K);
    CUDAGRAD_LAUNCH_CHECK("conv2d_bias_backward_kernel");
}

}  // namespace cudagrad::cuda
