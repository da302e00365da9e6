// conv2d on the GPU: the CUDA-free interface of the hand-written kernels (kernels/conv2d_*.cu)
// and of the cuDNN version (cuda/cudnn_conv2d.hpp), so that plain C++ files (the op, tests,
// benchmarks) can call them with raw device pointers.
//
//   x: (N, C, H, W), w: (K, C/groups, R, S), y: (N, K, P, Q), all float32, contiguous, NCHW
//   forward          y  = conv(x, w)              y[n,k,p,q]  = sum_{c,r,s} w[k,c,r,s] x[n,c,h(p,r),w(q,s)]
//   backward data    dx = conv_transpose(dy, w)   dx[n,c,h,w] = sum over the (k,p,q,r,s) whose tap reads x[n,c,h,w]
//   backward weight  dw = correlate(x, dy)        dw[k,c,r,s] = sum_{n,p,q} dy[n,k,p,q] x[n,c,h(p,r),w(q,s)]
//   with h(p, r) = p*stride_h - pad_h + r*dilation_h (likewise w(q, s)); taps outside the
//   image read zero. The CPU reference is src/cpu/conv2d.cpp (same formulas, PyTorch semantics).
//
// The implementations (the names of registry.hpp's "conv2d" family):
//   direct         v1, kernels/conv2d_direct.cu: one thread per output element, every option
//   implicit_gemm  v2, kernels/conv2d_implicit_gemm.cu: tiled fp32 GEMM, im2col on the fly
//   tensor_core    v3, kernels/conv2d_tensor_core.cu: the same GEMM on mma.sync (tf32 or bf16)
//   cudnn          cuda/cudnn_conv2d.cu: cuDNN's legacy API with a per-shape algorithm search
// v2 and v3 need groups == 1 and dilation == 1 (and 32-bit offsets); otherwise they say so once
// on standard error and run the direct kernel. Every pass overwrites its output.
#pragma once

#include <cstdint>
#include <string>

namespace cudagrad::cuda {

// Sizes of one convolution; the letters are those of the formulas above.
struct ConvProblem {
    std::int64_t N = 1, C = 1, H = 1, W = 1;  // input
    std::int64_t K = 1, R = 1, S = 1;         // output channels, kernel height and width
    std::int64_t P = 1, Q = 1;                // output height and width
    std::int64_t stride_h = 1, stride_w = 1;
    std::int64_t pad_h = 0, pad_w = 0;
    std::int64_t dilation_h = 1, dilation_w = 1;
    std::int64_t groups = 1;

    std::int64_t channels_per_group() const { return C / groups; }      // C/groups
    std::int64_t out_channels_per_group() const { return K / groups; }  // K/groups
    std::int64_t x_count() const { return N * C * H * W; }
    std::int64_t y_count() const { return N * K * P * Q; }
    std::int64_t w_count() const { return K * channels_per_group() * R * S; }
    // Multiply-adds of one pass (each of the three passes does the same number, counting the
    // taps that read padding as the GEMM formulation does): FLOPs = 2 * macs().
    double macs() const {
        return static_cast<double>(N) * K * P * Q * static_cast<double>(channels_per_group()) * R * S;
    }
    // "N=2 C=64 H=56 W=56 K=64 R=3 S=3 stride=1x1 pad=1x1 dilation=1x1 groups=1", for messages.
    std::string description() const;
};

enum class ConvPass { Forward, BackwardData, BackwardWeight };
const char* conv_pass_name(ConvPass pass);  // "forward", "backward_data", "backward_weight"

// ---- one entry point per pass, choosing the implementation by name ----
// implementation: "direct", "implicit_gemm", "tensor_core" or "cudnn" (any other name throws).
// tensor_core needs math mode tf32 or bf16 (registry.hpp) and throws a clear error otherwise;
// cudnn follows the math mode and deterministic() and may throw detail::VendorDeclined (the op
// then runs one of ours, see src/ops/conv2d_cuda.cpp). Defined in src/ops/conv2d_cuda.cpp.
void conv2d_forward(const std::string& implementation, const ConvProblem& problem, const float* x,
                    const float* w, float* y);
void conv2d_backward_data(const std::string& implementation, const ConvProblem& problem, const float* dy,
                          const float* w, float* dx);
void conv2d_backward_weight(const std::string& implementation, const ConvProblem& problem, const float* x,
                            const float* dy, float* dw);

// ---- the versions (the ladder) ----
// v1 (kernels/conv2d_direct.cu): any groups, dilation, stride, padding.
void conv2d_forward_v1_direct(const ConvProblem& problem, const float* x, const float* w, float* y);
void conv2d_backward_data_v1_direct(const ConvProblem& problem, const float* dy, const float* w, float* dx);
void conv2d_backward_weight_v1_direct(const ConvProblem& problem, const float* x, const float* dy, float* dw);

// v2 (kernels/conv2d_implicit_gemm.cu): fp32 SIMT tiles; backward weight splits the N*P*Q sum
// and adds the partial results in a fixed order (deterministic, no atomics).
void conv2d_forward_v2_implicit_gemm(const ConvProblem& problem, const float* x, const float* w, float* y);
void conv2d_backward_data_v2_implicit_gemm(const ConvProblem& problem, const float* dy, const float* w, float* dx);
void conv2d_backward_weight_v2_implicit_gemm(const ConvProblem& problem, const float* x, const float* dy,
                                             float* dw);

// v3 (kernels/conv2d_tensor_core.cu): mma.sync, tf32 m16n8k8 or bf16 m16n8k16 by math_mode(),
// fp32 accumulation; all three passes.
void conv2d_forward_v3_tensor_core(const ConvProblem& problem, const float* x, const float* w, float* y);
void conv2d_backward_data_v3_tensor_core(const ConvProblem& problem, const float* dy, const float* w, float* dx);
void conv2d_backward_weight_v3_tensor_core(const ConvProblem& problem, const float* x, const float* dy,
                                           float* dw);

// True when the implicit-GEMM kernels (v2, v3) can run this problem: groups == 1, dilation 1,
// every tensor and GEMM dimension addressable with 32-bit offsets. Otherwise they fall back to
// v1 (with a notice once).
bool implicit_gemm_supports(const ConvProblem& problem);

// out[i] = sum over s = 0, 1, ..., splits-1 (in that order) of partials[s * count + i]: the
// second pass of the split backward-weight GEMMs (kernels/conv2d_implicit_gemm.cu).
void conv2d_sum_partials(const float* partials, std::int64_t splits, std::int64_t count, float* out);

// ---- bias (kernels/conv2d_bias.cu) ----
// y[n, k, p, q] += bias[k]
void conv2d_bias_add(const ConvProblem& problem, const float* bias, float* y);
// dbias[k] = sum over n, p, q of dy[n, k, p, q] (a fixed-order tree per channel: deterministic)
void conv2d_bias_backward(const ConvProblem& problem, const float* dy, float* dbias);

}  // namespace cudagrad::cuda
