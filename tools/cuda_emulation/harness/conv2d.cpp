// Emulation harness for the conv2d kernels (kernels/conv2d_*.cu): runs every version (direct,
// implicit GEMM, tensor core TF32 and BF16) forward, backward-data and backward-weight, plus the
// bias kernels, on small odd shapes, against a double-precision direct convolution.
// Inputs are multiples of 1/8 in [-1, 1]: exact in TF32 and BF16, so every version must match
// the reference to float rounding of the sums.
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "compare.hpp"
#include "cuda/conv2d.hpp"
#include "cudagrad/error.hpp"
#include "cudagrad/registry.hpp"

using namespace cudagrad;
using namespace cudagrad::cuda;
using std::int64_t;

// Defined in src/ops/conv2d_cuda.cpp in the library; the kernels use it in messages.
std::string ConvProblem::description() const {
    return "N=" + std::to_string(N) + " C=" + std::to_string(C) + " K=" + std::to_string(K);
}

namespace {

struct Reference {
    std::vector<double> y, dx, dw, dbias;
};

Reference direct_convolution(const ConvProblem& p, const std::vector<float>& x, const std::vector<float>& w,
                             const std::vector<float>& dy) {
    Reference r;
    r.y.assign(p.y_count(), 0);
    r.dx.assign(p.x_count(), 0);
    r.dw.assign(p.w_count(), 0);
    r.dbias.assign(p.K, 0);
    const int64_t Cg = p.channels_per_group(), Kg = p.out_channels_per_group();
    for (int64_t n = 0; n < p.N; ++n)
        for (int64_t k = 0; k < p.K; ++k)
            for (int64_t oh = 0; oh < p.P; ++oh)
                for (int64_t ow = 0; ow < p.Q; ++ow) {
                    const int64_t yi = ((n * p.K + k) * p.P + oh) * p.Q + ow;
                    r.dbias[k] += dy[yi];
                    for (int64_t c = 0; c < Cg; ++c)
                        for (int64_t rr = 0; rr < p.R; ++rr)
                            for (int64_t ss = 0; ss < p.S; ++ss) {
                                const int64_t h = oh * p.stride_h - p.pad_h + rr * p.dilation_h;
                                const int64_t ww = ow * p.stride_w - p.pad_w + ss * p.dilation_w;
                                if (h < 0 || h >= p.H || ww < 0 || ww >= p.W) continue;
                                const int64_t xi = ((n * p.C + (k / Kg) * Cg + c) * p.H + h) * p.W + ww;
                                const int64_t wi = ((k * Cg + c) * p.R + rr) * p.S + ss;
                                r.y[yi] += static_cast<double>(w[wi]) * x[xi];
                                r.dx[xi] += static_cast<double>(dy[yi]) * w[wi];
                                r.dw[wi] += static_cast<double>(dy[yi]) * x[xi];
                            }
                }
    return r;
}

int64_t output_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dilation) {
    return (in + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
}

}  // namespace

int main() {
    struct Case {
        int64_t N, C, H, W, K, R, S, stride_h, stride_w, pad_h, pad_w, dilation, groups;
    };
    const std::vector<Case> cases = {
        {2, 3, 9, 9, 5, 3, 3, 2, 2, 1, 1, 1, 1},       // odd everything, stride 2
        {1, 7, 11, 10, 13, 5, 5, 1, 1, 2, 2, 1, 1},    // batch 1, 5x5, non-square input
        {2, 16, 7, 7, 40, 1, 1, 2, 2, 0, 0, 1, 1},     // 1x1 stride 2 (ResNet downsample)
        {2, 4, 8, 8, 6, 3, 3, 1, 1, 2, 2, 2, 2},       // dilation + groups: v2/v3 fall back to direct
        {2, 33, 6, 6, 70, 3, 3, 1, 1, 1, 1, 1, 1},     // C, K not multiples of 8/32
        {3, 130, 5, 5, 20, 1, 1, 1, 1, 0, 0, 1, 1},    // long reduction (split-K in backward weight)
        {2, 3, 14, 14, 8, 7, 7, 2, 2, 3, 3, 1, 1},     // ResNet stem geometry
        {2, 24, 9, 7, 16, 3, 2, 2, 1, 1, 0, 1, 1},     // rectangular kernel, unequal strides
    };
    std::mt19937 rng(1);
    for (const Case& c : cases) {
        ConvProblem p;
        p.N = c.N; p.C = c.C; p.H = c.H; p.W = c.W; p.K = c.K; p.R = c.R; p.S = c.S;
        p.stride_h = c.stride_h; p.stride_w = c.stride_w; p.pad_h = c.pad_h; p.pad_w = c.pad_w;
        p.dilation_h = c.dilation; p.dilation_w = c.dilation; p.groups = c.groups;
        p.P = output_size(p.H, p.R, p.stride_h, p.pad_h, p.dilation_h);
        p.Q = output_size(p.W, p.S, p.stride_w, p.pad_w, p.dilation_w);
        const std::vector<float> x = emulation::random_values(rng, p.x_count(), -8, 8, 8.0f);
        const std::vector<float> w = emulation::random_values(rng, p.w_count(), -8, 8, 8.0f);
        const std::vector<float> dy = emulation::random_values(rng, p.y_count(), -8, 8, 8.0f);
        const std::vector<float> bias = emulation::random_values(rng, p.K, -8, 8, 8.0f);
        const Reference ref = direct_convolution(p, x, w, dy);
        std::vector<double> y_with_bias = ref.y;
        for (std::size_t i = 0; i < y_with_bias.size(); ++i) y_with_bias[i] += bias[(i / (p.P * p.Q)) % p.K];
        const std::string shape = "N" + std::to_string(p.N) + " C" + std::to_string(p.C) + " " + std::to_string(p.H) +
                                  "x" + std::to_string(p.W) + " K" + std::to_string(p.K) + " " + std::to_string(p.R) +
                                  "x" + std::to_string(p.S) + " stride " + std::to_string(p.stride_h) + " groups " +
                                  std::to_string(p.groups);
        for (std::string version : {"direct", "implicit_gemm", "tensor_core_tf32", "tensor_core_bf16"}) {
            std::vector<float> y(p.y_count(), NAN), dx(p.x_count(), NAN), dw(p.w_count(), NAN), dbias(p.K, NAN);
            set_math_mode(version == "tensor_core_bf16" ? MathMode::BF16 : MathMode::TF32);
            if (version == "direct") {
                conv2d_forward_v1_direct(p, x.data(), w.data(), y.data());
                conv2d_backward_data_v1_direct(p, dy.data(), w.data(), dx.data());
                conv2d_backward_weight_v1_direct(p, x.data(), dy.data(), dw.data());
            } else if (version == "implicit_gemm") {
                conv2d_forward_v2_implicit_gemm(p, x.data(), w.data(), y.data());
                conv2d_backward_data_v2_implicit_gemm(p, dy.data(), w.data(), dx.data());
                conv2d_backward_weight_v2_implicit_gemm(p, x.data(), dy.data(), dw.data());
            } else {
                conv2d_forward_v3_tensor_core(p, x.data(), w.data(), y.data());
                conv2d_backward_data_v3_tensor_core(p, dy.data(), w.data(), dx.data());
                conv2d_backward_weight_v3_tensor_core(p, x.data(), dy.data(), dw.data());
            }
            conv2d_bias_backward(p, dy.data(), dbias.data());
            const std::string name = version + " " + shape;
            emulation::compare(name + " forward", y.data(), ref.y, 1e-6, 1e-6);
            emulation::compare(name + " backward data", dx.data(), ref.dx, 1e-6, 1e-6);
            emulation::compare(name + " backward weight", dw.data(), ref.dw, 1e-6, 1e-6);
            emulation::compare(name + " bias backward", dbias.data(), ref.dbias, 1e-6, 1e-6);
            conv2d_bias_add(p, bias.data(), y.data());
            emulation::compare(name + " bias add", y.data(), y_with_bias, 1e-6, 1e-6);
        }
        std::printf("  conv2d %s: checked\n", shape.c_str());
    }
    // The tensor-core version must refuse fp32 math mode with a clear error, not run.
    set_math_mode(MathMode::FP32);
    try {
        ConvProblem p;
        p.P = 1; p.Q = 1;
        float a = 1, b = 1, y = 0;
        conv2d_forward_v3_tensor_core(p, &a, &b, &y);
        emulation::fail("tensor_core forward ran in fp32 math mode instead of refusing");
    } catch (const Error&) {
    }
    return emulation::finish("conv2d");
}
