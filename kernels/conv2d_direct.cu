// conv2d v1: direct convolution, one thread per output element. The readable version, and the
// one that handles every option (groups, dilation, any stride and padding).
//
//   x: (N, C, H, W), w: (K, C/groups, R, S), y: (N, K, P, Q), dy like y, dx like x, dw like w
//   h(p, r) = p*stride_h - pad_h + r*dilation_h,  w(q, s) = q*stride_w - pad_w + s*dilation_w
//   forward   y[n,k,p,q]  = sum over c < C/groups, r, s of w[k,c,r,s] * x[n, g*C/groups + c, h, w]
//             (g = k / (K/groups), the group of output channel k; taps outside the image read 0)
//   dx        dx[n,c,h,w] = sum over k of c's group, r, s with p = (h + pad_h - r*dilation_h) / stride_h
//             an integer in [0, P) (likewise q) of dy[n,k,p,q] * w[k, c mod C/groups, r, s]
//   dw        dw[k,c,r,s] = sum over n, p, q of dy[n,k,p,q] * x[n, g*C/groups + c, h(p,r), w(q,s)]
// CPU reference: src/cpu/conv2d.cpp (conv2d_*_reference are the same loops).
//
// dx gathers (each input pixel sums what it contributed to) instead of scattering dy into dx
// with atomics: no atomics, and the sum has a fixed order, so the result is deterministic.
//
// Napkin math (H100: ~51 TFLOP/s fp32 FMA peak, ~3 TB/s DRAM, L1 ~128 B/clock/SM). Each
// multiply-add loads one x (or dy) value and one weight: the weight is the same for all threads
// of a warp (a broadcast) and neighbouring threads read neighbouring x, so the loads come from
// L1, not DRAM; but one L1 load per FMA caps the kernel near 132 SMs * 32 loads/clock * 1.7 GHz
// = 7 T loads/s, i.e. <= ~14 TFLOP/s, and the index arithmetic per tap brings it lower: expect
// a few TFLOP/s for forward and dx. ResNet-50's layer1 3x3 conv at batch 128 is 2*128*64*56*56*
// 64*9 = 29.6 GFLOP: ~10 ms here against ~1 ms for a good implicit GEMM.
// dw has only K*C/groups*R*S threads (36864 for that layer: ~9 warps per SM), each looping
// over N*P*Q = 401408 taps in sequence: its time is that loop's latency, ~tens of ms. Slow but
// simple; implicit_gemm's split reduction is the fast version.
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/check.hpp"
#include "cuda/context.hpp"
#include "cuda/conv2d.hpp"

namespace cudagrad::cuda {
namespace {

constexpr int threads_per_block = 256;

// The problem's sizes as kernel arguments (passed by value; int64 so that element offsets of
// big tensors cannot overflow).
struct Shape {
    std::int64_t N, C, H, W, K, R, S, P, Q;
    std::int64_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
    std::int64_t channels_per_group, out_channels_per_group;
};

Shape shape_of(const ConvProblem& p) {
    return Shape{p.N,        p.C,        p.H,     p.W,     p.K,          p.R,         p.S,
                 p.P,        p.Q,        p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h,
                 p.dilation_w, p.channels_per_group(), p.out_channels_per_group()};
}

__global__ void conv2d_forward_direct_kernel(Shape s, const float* __restrict__ x, const float* __restrict__ w,
                                             float* __restrict__ y) {
    const std::int64_t count = s.N * s.K * s.P * s.Q;
    for (std::int64_t index = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; index < count;
         index += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        // index = ((n*K + k)*P + p)*Q + q: neighbouring threads take neighbouring q, so their x
        // reads are neighbours too, and all read the same weight.
        const std::int64_t q = index % s.Q, p = (index / s.Q) % s.P;
        const std::int64_t k = (index / (s.Q * s.P)) % s.K, n = index / (s.Q * s.P * s.K);
        const std::int64_t first_channel = (k / s.out_channels_per_group) * s.channels_per_group;
        const float* x_image = x + (n * s.C + first_channel) * s.H * s.W;
        const float* w_filter = w + k * s.channels_per_group * s.R * s.S;
        float sum = 0.0f;
        for (std::int64_t c = 0; c < s.channels_per_group; ++c) {
            for (std::int64_t r = 0; r < s.R; ++r) {
                const std::int64_t h = p * s.stride_h - s.pad_h + r * s.dilation_h;
                if (h < 0 || h >= s.H) continue;
                for (std::int64_t t = 0; t < s.S; ++t) {
                    const std::int64_t col = q * s.stride_w - s.pad_w + t * s.dilation_w;
                    if (col < 0 || col >= s.W) continue;
                    sum += w_filter[(c * s.R + r) * s.S + t] * x_image[(c * s.H + h) * s.W + col];
                }
            }
        }
        y[index] = sum;
    }
}

__global__ void conv2d_backward_data_direct_kernel(Shape s, const float* __restrict__ dy,
                                                   const float* __restrict__ w, float* __restrict__ dx) {
    const std::int64_t count = s.N * s.C * s.H * s.W;
    for (std::int64_t index = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; index < count;
         index += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        const std::int64_t col = index % s.W, h = (index / s.W) % s.H;
        const std::int64_t c = (index / (s.W * s.H)) % s.C, n = index / (s.W * s.H * s.C);
        const std::int64_t group = c / s.channels_per_group, c_in_group = c % s.channels_per_group;
        float sum = 0.0f;
        for (std::int64_t k = group * s.out_channels_per_group; k < (group + 1) * s.out_channels_per_group; ++k) {
            const float* dy_plane = dy + (n * s.K + k) * s.P * s.Q;
            const float* w_taps = w + (k * s.channels_per_group + c_in_group) * s.R * s.S;
            for (std::int64_t r = 0; r < s.R; ++r) {
                // Output row p read this pixel through tap r when p*stride_h = h + pad_h - r*dilation_h.
                const std::int64_t row_offset = h + s.pad_h - r * s.dilation_h;
                if (row_offset < 0 || row_offset % s.stride_h != 0) continue;
                const std::int64_t p = row_offset / s.stride_h;
                if (p >= s.P) continue;
                for (std::int64_t t = 0; t < s.S; ++t) {
                    const std::int64_t col_offset = col + s.pad_w - t * s.dilation_w;
                    if (col_offset < 0 || col_offset % s.stride_w != 0) continue;
                    const std::int64_t q = col_offset / s.stride_w;
                    if (q >= s.Q) continue;
                    sum += dy_plane[p * s.Q + q] * w_taps[r * s.S + t];
                }
            }
        }
        dx[index] = sum;
    }
}

__global__ void conv2d_backward_weight_direct_kernel(Shape s, const float* __restrict__ x,
                                                     const float* __restrict__ dy, float* __restrict__ dw) {
    const std::int64_t count = s.K * s.channels_per_group * s.R * s.S;
    for (std::int64_t index = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; index < count;
         index += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        const std::int64_t t = index % s.S, r = (index / s.S) % s.R;
        const std::int64_t c_in_group = (index / (s.S * s.R)) % s.channels_per_group;
        const std::int64_t k = index / (s.S * s.R * s.channels_per_group);
        const std::int64_t c = (k / s.out_channels_per_group) * s.channels_per_group + c_in_group;
        float sum = 0.0f;
        for (std::int64_t n = 0; n < s.N; ++n) {
            const float* dy_plane = dy + (n * s.K + k) * s.P * s.Q;
            const float* x_plane = x + (n * s.C + c) * s.H * s.W;
            for (std::int64_t p = 0; p < s.P; ++p) {
                const std::int64_t h = p * s.stride_h - s.pad_h + r * s.dilation_h;
                if (h < 0 || h >= s.H) continue;
                for (std::int64_t q = 0; q < s.Q; ++q) {
                    const std::int64_t col = q * s.stride_w - s.pad_w + t * s.dilation_w;
                    if (col < 0 || col >= s.W) continue;
                    sum += dy_plane[p * s.Q + q] * x_plane[h * s.W + col];
                }
            }
        }
        dw[index] = sum;
    }
}

}  // namespace

void conv2d_forward_v1_direct(const ConvProblem& problem, const float* x, const float* w, float* y) {
    const std::int64_t count = problem.y_count();
    if (count == 0) return;
    conv2d_forward_direct_kernel<<<grid_for(count, threads_per_block), threads_per_block, 0, current_stream()>>>(
        shape_of(problem), x, w, y);
    CUDAGRAD_LAUNCH_CHECK("conv2d_forward_direct_kernel");
}

void conv2d_backward_data_v1_direct(const ConvProblem& problem, const float* dy, const float* w, float* dx) {
    const std::int64_t count = problem.x_count();
    if (count == 0) return;
    conv2d_backward_data_direct_kernel<<<grid_for(count, threads_per_block), threads_per_block, 0,
                                         current_stream()>>>(shape_of(problem), dy, w, dx);
    CUDAGRAD_LAUNCH_CHECK("conv2d_backward_data_direct_kernel");
}

void conv2d_backward_weight_v1_direct(const ConvProblem& problem, const float* x, const float* dy, float* dw) {
    const std::int64_t count = problem.w_count();
    if (count == 0) return;
    conv2d_backward_weight_direct_kernel<<<grid_for(count, threads_per_block), threads_per_block, 0,
                                           current_stream()>>>(shape_of(problem), x, dy, dw);
    CUDAGRAD_LAUNCH_CHECK("conv2d_backward_weight_direct_kernel");
}

}  // namespace cudagrad::cuda
