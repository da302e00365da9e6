// conv2d on the GPU against the CPU op: every implementation (direct, implicit_gemm, cudnn in
// fp32; tensor_core and cudnn in tf32 and bf16), forward + dx + dweight + dbias through
// autograd, on all 23 distinct ResNet-50 convolution shapes (batch 2, spatial size capped at 28
// so the CPU reference stays well under a second in total; stride and kernel kept) and on odd
// shapes (C=3, C=7/K=13 with a 5x5 kernel, batch 1, 1x1 stride 2, groups 2, dilation 2, no bias).
//
// Inputs are multiples of 1/8 in [-1, 1]: every product is a multiple of 1/64 and every partial
// sum (|sum| <= the reduction length L <= 4608) fits in 19 bits, so fp32, tf32 and bf16 (which
// hold these inputs exactly) all compute the exact result in any summation order. A correct
// kernel of ours is therefore exact and gets a tight tolerance: atol = 1e-6 * L + 1e-5 (the
// fp32 bound below), against which a missing or misplaced term (>= 1/64) fails.
// cuDNN may pick transform algorithms (FFT, Winograd) that round intermediate values:
//   fp32  the same atol: their error is a few fp32 roundings of values ~ sqrt(L) (~1e-4 at
//         L = 4608), well under 1e-6 * L = 4.6e-3, rtol 1e-4
//   tf32  rounding transformed values to 10 mantissa bits (2^-11 relative) can cost ~0.5% of
//         the output's scale (rms 0.375 * sqrt(L) for these inputs): atol 2% of it, rtol 1e-2
//   bf16  outputs rounded to bfloat16 (2^-9 relative) and transforms at 7 bits: atol 3%, rtol 2e-2
// Those looser vendor bounds still catch any plumbing mistake (a wrong stride, padding or
// layout gives errors of the order of the output itself). A separate test feeds continuous
// random inputs in fp32 mode, where TF32 rounding would exceed the fp32 tolerance, to check
// that fp32 really is fp32 (cuDNN with CUDNN_FMA_MATH).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../benchmarks/resnet50_shapes.hpp"
#include "catch.hpp"
#include "cuda_test_support.hpp"
#include "test_support.hpp"

using namespace cudagrad;
using namespace cudagrad::testing;

namespace {

struct ConvCase {
    std::string name;
    std::int64_t N, C, H, W, K, R, S, stride, pad, dilation, groups;
    bool bias;
    Conv2dOptions options() const {
        Conv2dOptions o;
        o.stride_h = o.stride_w = stride;
        o.padding_h = o.padding_w = pad;
        o.dilation_h = o.dilation_w = dilation;
        o.groups = groups;
        return o;
    }
    std::int64_t P() const { return (H + 2 * pad - dilation * (R - 1) - 1) / stride + 1; }
    std::int64_t Q() const { return (W + 2 * pad - dilation * (S - 1) - 1) / stride + 1; }
};

struct Config {
    const char* implementation;
    MathMode mode;
};

// Restores the default implementations, math mode and determinism whatever a test does.
struct RegistryGuard {
    ~RegistryGuard() {
        reset_implementations();
        set_deterministic(false);
    }
};

Tensor eighths_cpu(const Shape& shape, std::uint64_t seed) {
    std::vector<float> values = random_cpu(shape, seed).to_float_vector();
    for (float& value : values) value = std::round(value * 8.0f) / 8.0f;
    return Tensor::from_vector(values, shape);
}

struct Inputs {
    Tensor x, w, b, dy;
};

Inputs make_inputs(const ConvCase& c, bool continuous, std::uint64_t seed) {
    auto make = [&](const Shape& shape, std::uint64_t offset) {
        return continuous ? random_cpu(shape, seed + offset) : eighths_cpu(shape, seed + offset);
    };
    Inputs in;
    in.x = make({c.N, c.C, c.H, c.W}, 0);
    in.w = make({c.K, c.C / c.groups, c.R, c.S}, 1);
    if (c.bias) in.b = make({c.K}, 2);
    in.dy = make({c.N, c.K, c.P(), c.Q()}, 3);
    return in;
}

struct Outputs {
    Tensor y, dx, dw, db;
};

// The op on `device`, forward and backward with dy, every input a fresh leaf.
Outputs run_op(const ConvCase& c, const Inputs& in, Device device) {
    auto leaf = [&](const Tensor& t) {
        Tensor copy = t.detach().to(device);  // a new leaf (detach() never returns `t` itself)
        copy.set_requires_grad(true);
        return copy;
    };
    Tensor x = leaf(in.x), w = leaf(in.w), b = in.b.defined() ? leaf(in.b) : Tensor();
    Tensor y = conv2d(x, w, b, c.options());
    y.backward(in.dy.to(device));
    return {y, x.grad(), w.grad(), b.defined() ? b.grad() : Tensor()};
}

struct Tolerance {
    double rtol, atol;
};

// L: the number of products summed into one output element of the pass (see the top).
Tolerance tolerance(const Config& config, double L) {
    const bool vendor = std::string(config.implementation) == "cudnn";
    const double exact_bound = 1e-6 * L + 1e-5;
    if (!vendor) return {1e-5, exact_bound};
    const double scale = 0.375 * std::sqrt(L);  // rms of an output for inputs in eighths
    switch (config.mode) {
        case MathMode::FP32: return {1e-4, exact_bound};
        case MathMode::TF32: return {1e-2, 0.02 * scale};
        case MathMode::BF16: return {2e-2, 0.03 * scale};
    }
    return {0.0, 0.0};
}

void check_pass(const char* what, const Tensor& actual, const Tensor& expected, Tolerance tol) {
    INFO(what << ": rtol " << tol.rtol << ", atol " << tol.atol);
    require_close(actual, expected, tol.rtol, tol.atol);
}

const std::vector<Config>& all_configs() {
    static const std::vector<Config> configs = {
        {"direct", MathMode::FP32},      {"implicit_gemm", MathMode::FP32}, {"cudnn", MathMode::FP32},
        {"tensor_core", MathMode::TF32}, {"cudnn", MathMode::TF32},          {"tensor_core", MathMode::BF16},
        {"cudnn", MathMode::BF16},
    };
    return configs;
}

// Every configuration against the CPU op on one case.
void check_case(const ConvCase& c, const std::vector<Config>& configs, bool continuous = false) {
    RegistryGuard guard;
    const Inputs in = make_inputs(c, continuous, 1000 + static_cast<std::uint64_t>(c.N * c.C * c.K + c.H));
    const Outputs expected = run_op(c, in, Device::cpu());
    const double L_forward = static_cast<double>(c.C / c.groups * c.R * c.S);
    const double L_data = static_cast<double>(c.K / c.groups * c.R * c.S);
    const double L_weight = static_cast<double>(c.N * c.P() * c.Q());
    for (const Config& config : configs) {
        INFO("case " << c.name << " [N=" << c.N << " C=" << c.C << " H=" << c.H << " W=" << c.W << " K=" << c.K
                     << " R=" << c.R << " S=" << c.S << " stride=" << c.stride << " pad=" << c.pad
                     << " dilation=" << c.dilation << " groups=" << c.groups << "], implementation "
                     << config.implementation << ", math " << math_mode_name(config.mode));
        set_implementation("conv2d", config.implementation);
        set_math_mode(config.mode);
        const Outputs actual = run_op(c, in, gpu());
        check_pass("forward", actual.y, expected.y, tolerance(config, L_forward));
        check_pass("dx", actual.dx, expected.dx, tolerance(config, L_data));
        check_pass("dweight", actual.dw, expected.dw, tolerance(config, L_weight));
        // dbias is always cudagrad's kernel: exact for these inputs in every mode.
        if (c.bias) check_pass("dbias", actual.db, expected.db, {1e-5, 1e-6 * L_weight + 1e-5});
    }
}

std::vector<ConvCase> resnet50_cases() {
    std::vector<ConvCase> cases;
    for (const bench::ConvLayer& layer : bench::resnet50_conv_layers()) {
        const std::int64_t size = std::min<std::int64_t>(layer.size, 28);
        cases.push_back({layer.name, 2, layer.channels, size, size, layer.out_channels, layer.kernel, layer.kernel,
                         layer.stride, layer.padding(), 1, 1, true});
    }
    return cases;
}

}  // namespace

TEST_CASE("conv2d GPU: every implementation matches the CPU op on the ResNet-50 shapes", "[cuda][conv2d]") {
    for (const ConvCase& c : resnet50_cases()) check_case(c, all_configs());
}

TEST_CASE("conv2d GPU: odd shapes, groups, dilation, no bias", "[cuda][conv2d]") {
    const std::vector<ConvCase> cases = {
        {"C=3 K=5 9x9 stride 2 pad 1", 2, 3, 9, 9, 5, 3, 3, 2, 1, 1, 1, true},
        {"C=7 K=13 5x5 pad 2", 2, 7, 11, 13, 13, 5, 5, 1, 2, 1, 1, true},
        {"batch 1", 1, 16, 15, 15, 24, 3, 3, 1, 1, 1, 1, true},
        {"1x1 stride 2", 2, 32, 13, 13, 48, 1, 1, 2, 0, 1, 1, true},
        {"no bias", 2, 20, 9, 9, 36, 3, 3, 2, 1, 1, 1, false},
        // implicit_gemm and tensor_core need groups == 1 and dilation 1: they say so once and run
        // the direct kernel, which must still give the right answer.
        {"groups 2", 2, 8, 10, 10, 12, 3, 3, 1, 1, 1, 2, true},
        {"dilation 2", 2, 6, 12, 12, 10, 3, 3, 1, 2, 2, 1, true},
        {"groups 2, dilation 2, stride 2", 2, 4, 11, 11, 6, 3, 3, 2, 2, 2, 2, true},
    };
    for (const ConvCase& c : cases) check_case(c, all_configs());
}

TEST_CASE("conv2d GPU: fp32 mode is plain fp32 (no TF32), on continuous random inputs", "[cuda][conv2d]") {
    // L = 4608 for forward and dx: TF32 rounding would give errors ~0.016 rms, the fp32
    // tolerance (atol 4.6e-3 + 1e-4 |y|) allows ~1e-4.
    const ConvCase c{"layer4 3x3 512 on 7x7", 2, 512, 7, 7, 512, 3, 3, 1, 1, 1, 1, true};
    check_case(c, {{"direct", MathMode::FP32}, {"implicit_gemm", MathMode::FP32}, {"cudnn", MathMode::FP32}},
               /*continuous=*/true);
}

TEST_CASE("conv2d GPU: tensor_core needs math mode tf32 or bf16", "[cuda][conv2d]") {
    RegistryGuard guard;
    set_implementation("conv2d", "tensor_core");
    set_math_mode(MathMode::FP32);
    const Tensor x = random_cpu({1, 4, 6, 6}, 1).to(gpu()), w = random_cpu({8, 4, 3, 3}, 2).to(gpu());
    require_error([&] { conv2d(x, w, Tensor()); }, {"conv2d", "tensor_core", "tf32", "fp32"});
}

TEST_CASE("conv2d GPU: clear errors for float64 and mixed devices", "[cuda][conv2d]") {
    const Tensor x = random_cpu({1, 4, 6, 6}, 1), w = random_cpu({8, 4, 3, 3}, 2);
    require_error([&] { conv2d(x.to(DType::Float64).to(gpu()), w.to(DType::Float64).to(gpu()), Tensor()); },
                  {"conv2d", "float32"});
    require_error([&] { conv2d(x.to(gpu()), w, Tensor()); }, {"conv2d", "different devices"});
    require_error([&] { conv2d(x.to(gpu()), w.to(gpu()), random_cpu({8}, 3)); }, {"conv2d", "different devices"});
}

TEST_CASE("conv2d GPU: deterministic cuDNN gives the same bits twice", "[cuda][conv2d]") {
    RegistryGuard guard;
    set_implementation("conv2d", "cudnn");
    set_deterministic(true);
    const ConvCase c{"layer3 3x3 256 on 14x14", 4, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1, true};
    const Inputs in = make_inputs(c, /*continuous=*/true, 77);
    const Outputs first = run_op(c, in, gpu()), second = run_op(c, in, gpu());
    require_close(second.dx, first.dx, 0.0, 0.0);
    require_close(second.dw, first.dw, 0.0, 0.0);
    require_close(second.db, first.db, 0.0, 0.0);
}

TEST_CASE("conv2d GPU: only the gradients asked for", "[cuda][conv2d]") {
    RegistryGuard guard;
    const ConvCase c{"bias only", 2, 8, 9, 9, 16, 3, 3, 1, 1, 1, 1, true};
    const Inputs in = make_inputs(c, false, 5);
    for (const char* implementation : {"cudnn", "implicit_gemm"}) {
        INFO("implementation " << implementation);
        set_implementation("conv2d", implementation);
        Tensor x = in.x.to(gpu()), w = in.w.to(gpu()), b = in.b.to(gpu());
        b.set_requires_grad(true);
        Tensor y = conv2d(x, w, b, c.options());
        y.backward(in.dy.to(gpu()));
        CHECK_FALSE(x.grad().defined());
        CHECK_FALSE(w.grad().defined());
        Tensor cpu_b = in.b.detach().clone();
        cpu_b.set_requires_grad(true);
        conv2d(in.x, in.w, cpu_b, c.options()).backward(in.dy);
        require_close(b.grad(), cpu_b.grad(), 1e-5, 1e-4);
    }
}
