// conv2d on the GPU: the op's GPU path (declared in conv2d_cuda.hpp) and the name -> version
// entry points of cuda/conv2d.hpp. Plain C++: the kernels are behind CUDA-free headers.
//
// Which code runs: implementation("conv2d") picks one of
//   cudnn          cuda/cudnn_conv2d.cu, in the math mode's precision; in bf16 mode, where
//                  cuDNN has no bf16 algorithm, cuDNN in tf32 (said once); where cuDNN declines
//                  altogether, cudagrad's kernel (said once): tensor_core in tf32/bf16 mode,
//                  implicit_gemm in fp32 mode
//   direct, implicit_gemm, tensor_core   kernels/conv2d_*.cu (v1, v2, v3); v2 and v3 run v1
//                  for groups > 1 or dilation > 1 (said once); tensor_core needs tf32 or bf16
// The bias is added, and its gradient summed, by kernels/conv2d_bias.cu whatever the choice.
// Shapes, formulas and the CPU reference: src/ops/conv2d.cpp, src/cpu/conv2d.hpp.
#ifdef CUDAGRAD_WITH_CUDA

#include "ops/conv2d_cuda.hpp"

#include <string>

#include "cuda/conv2d.hpp"
#include "cuda/cudnn_conv2d.hpp"
#include "cudagrad/device.hpp"
#include "cudagrad/registry.hpp"
#include "registry_internal.hpp"

namespace cudagrad {
namespace cuda {

std::string ConvProblem::description() const {
    auto text = [](std::int64_t value) { return std::to_string(value); };
    return "N=" + text(N) + " C=" + text(C) + " H=" + text(H) + " W=" + text(W) + " K=" + text(K) + " R=" + text(R) +
           " S=" + text(S) + " stride=" + text(stride_h) + "x" + text(stride_w) + " pad=" + text(pad_h) + "x" +
           text(pad_w) + " dilation=" + text(dilation_h) + "x" + text(dilation_w) + " groups=" + text(groups);
}

const char* conv_pass_name(ConvPass pass) {
    switch (pass) {
        case ConvPass::Forward: return "forward";
        case ConvPass::BackwardData: return "backward_data";
        case ConvPass::BackwardWeight: return "backward_weight";
    }
    return "unknown";
}

namespace {

// Runs call(mode) for cuDNN in the math mode; bf16 that cuDNN declines runs as tf32 (said once).
template <typename Call>
void cudnn_in_math_mode(Call&& call) {
    const MathMode mode = math_mode();
    if (mode != MathMode::BF16) return call(mode);
    try {
        call(MathMode::BF16);
    } catch (const detail::VendorDeclined& declined) {
        detail::notice_once("conv2d cudnn bf16", std::string("conv2d: cuDNN declined bfloat16 (") + declined.what() +
                                                     "); running cuDNN in tf32 instead");
        call(MathMode::TF32);
    }
}

[[noreturn]] void unknown_implementation(const std::string& implementation) {
    fail("conv2d", "unknown implementation '", implementation,
         "' (choices: cudnn, direct, implicit_gemm, tensor_core)");
}

}  // namespace

void conv2d_forward(const std::string& implementation, const ConvProblem& problem, const float* x, const float* w,
                    float* y) {
    if (implementation == "direct") return conv2d_forward_v1_direct(problem, x, w, y);
    if (implementation == "implicit_gemm") return conv2d_forward_v2_implicit_gemm(problem, x, w, y);
    if (implementation == "tensor_core") return conv2d_forward_v3_tensor_core(problem, x, w, y);
    if (implementation == "cudnn") {
        return cudnn_in_math_mode([&](MathMode mode) { cudnn_conv2d_forward(problem, mode, x, w, y); });
    }
    unknown_implementation(implementation);
}

void conv2d_backward_data(const std::string& implementation, const ConvProblem& problem, const float* dy,
                          const float* w, float* dx) {
    if (implementation == "direct") return conv2d_backward_data_v1_direct(problem, dy, w, dx);
    if (implementation == "implicit_gemm") return conv2d_backward_data_v2_implicit_gemm(problem, dy, w, dx);
    if (implementation == "tensor_core") return conv2d_backward_data_v3_tensor_core(problem, dy, w, dx);
    if (implementation == "cudnn") {
        return cudnn_in_math_mode([&](MathMode mode) { cudnn_conv2d_backward_data(problem, mode, dy, w, dx); });
    }
    unknown_implementation(implementation);
}

void conv2d_backward_weight(const std::string& implementation, const ConvProblem& problem, const float* x,
                            const float* dy, float* dw) {
    if (implementation == "direct") return conv2d_backward_weight_v1_direct(problem, x, dy, dw);
    if (implementation == "implicit_gemm") return conv2d_backward_weight_v2_implicit_gemm(problem, x, dy, dw);
    if (implementation == "tensor_core") return conv2d_backward_weight_v3_tensor_core(problem, x, dy, dw);
    if (implementation == "cudnn") {
        return cudnn_in_math_mode([&](MathMode mode) { cudnn_conv2d_backward_weight(problem, mode, x, dy, dw); });
    }
    unknown_implementation(implementation);
}

}  // namespace cuda

namespace detail {
namespace {

cuda::ConvProblem problem_of(const cpu::ConvGeometry& g) {
    cuda::ConvProblem p;
    p.N = g.batch;
    p.C = g.in_channels;
    p.H = g.in_height;
    p.W = g.in_width;
    p.K = g.out_channels;
    p.R = g.kernel_height;
    p.S = g.kernel_width;
    p.P = g.out_height;
    p.Q = g.out_width;
    p.stride_h = g.stride_height;
    p.stride_w = g.stride_width;
    p.pad_h = g.padding_height;
    p.pad_w = g.padding_width;
    p.dilation_h = g.dilation_height;
    p.dilation_w = g.dilation_width;
    p.groups = g.groups;
    return p;
}

// Runs run(name) with the chosen implementation; cuDNN that declines runs ours instead (said
// once): the tensor cores when the math mode allows them, else the fp32 implicit GEMM.
template <typename Run>
void run_chosen(Run&& run) {
    const std::string chosen = implementation("conv2d");
    if (chosen != "cudnn") return run(chosen);
    run_with_fallback(
        "conv2d", [&] { run("cudnn"); },
        [&] { run(math_mode() == MathMode::FP32 ? "implicit_gemm" : "tensor_core"); });
}

}  // namespace

Tensor conv2d_forward_cuda(const cpu::ConvGeometry& geometry, const Tensor& x, const Tensor& weight,
                           const Tensor& bias) {
    make_device_current(x.device());
    const cuda::ConvProblem problem = problem_of(geometry);
    Tensor y = Tensor::empty({problem.N, problem.K, problem.P, problem.Q}, DType::Float32, x.device());
    run_chosen([&](const std::string& name) {
        cuda::conv2d_forward(name, problem, x.data<float>(), weight.data<float>(), y.data<float>());
    });
    if (bias.defined()) cuda::conv2d_bias_add(problem, bias.data<float>(), y.data<float>());
    return y;
}

Tensor conv2d_backward_data_cuda(const cpu::ConvGeometry& geometry, const Tensor& dy, const Tensor& weight) {
    make_device_current(dy.device());
    const cuda::ConvProblem problem = problem_of(geometry);
    Tensor dx = Tensor::empty({problem.N, problem.C, problem.H, problem.W}, DType::Float32, dy.device());
    run_chosen([&](const std::string& name) {
        cuda::conv2d_backward_data(name, problem, dy.data<float>(), weight.data<float>(), dx.data<float>());
    });
    return dx;
}

Tensor conv2d_backward_weight_cuda(const cpu::ConvGeometry& geometry, const Tensor& x, const Tensor& dy) {
    make_device_current(dy.device());
    const cuda::ConvProblem problem = problem_of(geometry);
    Tensor dweight = Tensor::empty({problem.K, problem.channels_per_group(), problem.R, problem.S}, DType::Float32,
                                   dy.device());
    run_chosen([&](const std::string& name) {
        cuda::conv2d_backward_weight(name, problem, x.data<float>(), dy.data<float>(), dweight.data<float>());
    });
    return dweight;
}

Tensor conv2d_backward_bias_cuda(const cpu::ConvGeometry& geometry, const Tensor& dy) {
    make_device_current(dy.device());
    const cuda::ConvProblem problem = problem_of(geometry);
    Tensor dbias = Tensor::empty({problem.K}, DType::Float32, dy.device());
    cuda::conv2d_bias_backward(problem, dy.data<float>(), dbias.data<float>());
    return dbias;
}

}  // namespace detail
}  // namespace cudagrad

#endif  // CUDAGRAD_WITH_CUDA
