// GPU tests for SGD (src/optim/sgd.cpp's GPU path, kernels/sgd.cu): the fused one-launch step
// against the CPU optimiser on the same parameters and gradients, step by step.
//
// What is checked:
//   - momentum with and without dampening, Nesterov, no momentum, weight decay per group (one
//     group with the default decay, one with none), over several steps with fresh gradients;
//   - parameter sizes around the 8192-element chunk (1, 5, 8191, 8192, 8193, 3 chunks + 3), a
//     ResNet-like mix of 60 tensors (many chunks, many table entries), a parameter whose data
//     is not 16-byte aligned (the scalar path), a transposed (non-contiguous) parameter (updated
//     through a copy and written back);
//   - a parameter that has no gradient at first (skipped, no buffer) and then gets one (its
//     first step creates its buffer while the others are on later steps);
//   - state_dict from a GPU optimiser equals the CPU optimiser's; loading it into a new GPU
//     optimiser puts the buffers on the GPU and the next steps match the CPU again;
//   - the errors: float64 parameters on a GPU, parameters on two devices (nothing changes).
// Tolerance 0: the kernel performs the CPU's float operations in the CPU's order, each one
// correctly rounded (__fmul_rn / __fadd_rn, no FMA contraction), so weights and buffers must be
// the same bits after every step.
#include <cstdint>
#include <string>
#include <vector>

#include "catch.hpp"
#include "compare.hpp"
#include "cuda_test_support.hpp"
#include "test_support.hpp"

using namespace cudagrad;
using cudagrad::testing::gpu;
using cudagrad::testing::random_cpu;
using cudagrad::testing::require_close;
using cudagrad::testing::require_error;

namespace {

// The same parameters on both devices; the GPU ones may be special views.
struct Twins {
    std::vector<Tensor> cpu, gpu;
};

enum class Layout { Plain, Misaligned, Transposed };

void add_parameter(Twins& twins, const Shape& shape, std::uint64_t seed, Layout layout = Layout::Plain) {
    Tensor values = random_cpu(shape, seed);
    if (layout == Layout::Transposed) {
        REQUIRE(shape.size() == 2);
        // A leaf that is a transposed view of its storage, on both devices.
        Tensor cpu_base = random_cpu({shape[1], shape[0]}, seed);
        twins.cpu.push_back(cpu_base.transpose(0, 1).set_requires_grad(true));
        twins.gpu.push_back(cpu_base.to(gpu()).transpose(0, 1).set_requires_grad(true));
        return;
    }
    twins.cpu.push_back(values.clone().set_requires_grad(true));
    if (layout == Layout::Misaligned) {
        Tensor storage = Tensor::zeros({values.numel() + 1}, DType::Float32, gpu());
        Tensor view = storage.slice(0, 1, values.numel() + 1).view(shape);
        view.copy_(values);
        twins.gpu.push_back(view.set_requires_grad(true));
    } else {
        twins.gpu.push_back(values.to(gpu()).set_requires_grad(true));
    }
}

// Gives parameter i the same fresh random gradient on both devices, except those in `skip`.
void give_gradients(Twins& twins, std::uint64_t seed, const std::vector<std::size_t>& skip = {}) {
    for (std::size_t i = 0; i < twins.cpu.size(); ++i) {
        bool skipped = false;
        for (std::size_t s : skip) skipped = skipped || s == i;
        if (skipped) {
            twins.cpu[i].zero_grad();
            twins.gpu[i].zero_grad();
            continue;
        }
        Tensor gradient = random_cpu(twins.cpu[i].shape(), seed + i, -2.0, 2.0);
        twins.cpu[i].set_grad(gradient);
        twins.gpu[i].set_grad(gradient.to(gpu()));
    }
}

// Two groups: the first half of the parameters with the default weight decay, the rest with none.
SGD make_optimizer(const std::vector<Tensor>& parameters, const SgdOptions& options) {
    const std::size_t half = parameters.size() / 2;
    ParameterGroup decayed{{parameters.begin(), parameters.begin() + static_cast<std::ptrdiff_t>(half)}, std::nullopt,
                           {}};
    ParameterGroup plain{{parameters.begin() + static_cast<std::ptrdiff_t>(half), parameters.end()}, 0.0, {}};
    return SGD({decayed, plain}, options);
}

void require_same_state(const SGD& on_gpu, const SGD& on_cpu, const Twins& twins) {
    for (std::size_t i = 0; i < twins.cpu.size(); ++i) {
        INFO("parameter " << i << " " << twins.cpu[i].description());
        require_close(twins.gpu[i], twins.cpu[i], 0.0, 0.0);
    }
    for (std::size_t g = 0; g < on_cpu.groups().size(); ++g) {
        for (std::size_t i = 0; i < on_cpu.groups()[g].parameters.size(); ++i) {
            INFO("buffer " << i << " of group " << g);
            const Tensor expected = on_cpu.momentum_buffer(g, i), actual = on_gpu.momentum_buffer(g, i);
            REQUIRE(expected.defined() == actual.defined());
            if (!expected.defined()) continue;
            CHECK(actual.device() == gpu());
            require_close(actual, expected, 0.0, 0.0);
        }
    }
}

Twins chunk_boundary_parameters() {
    Twins twins;
    std::uint64_t seed = 1;
    for (const Shape& shape : {Shape{1}, Shape{5}, Shape{8191}, Shape{8192}, Shape{8193}, Shape{3 * 8192 + 3}}) {
        add_parameter(twins, shape, ++seed);
    }
    add_parameter(twins, {64, 3, 7, 7}, ++seed);
    add_parameter(twins, {33, 17}, ++seed, Layout::Misaligned);
    add_parameter(twins, {9000}, ++seed, Layout::Misaligned);
    add_parameter(twins, {40, 70}, ++seed, Layout::Transposed);
    add_parameter(twins, {1000, 7}, ++seed);
    add_parameter(twins, {257}, ++seed);
    return twins;
}

}  // namespace

TEST_CASE("GPU SGD matches the CPU step for step: momentum, dampening, Nesterov, weight decay, groups") {
    struct Config {
        const char* name;
        SgdOptions options;
    };
    const std::vector<Config> configs = {
        {"momentum 0.9", SgdOptions{0.1, 0.9, 0.0, 1e-4, false}},
        {"momentum 0.9, dampening 0.1", SgdOptions{0.05, 0.9, 0.1, 5e-4, false}},
        {"nesterov", SgdOptions{0.1, 0.9, 0.0, 1e-4, true}},
        {"no momentum", SgdOptions{0.2, 0.0, 0.0, 1e-3, false}},
        {"no momentum, no decay", SgdOptions{0.2, 0.0, 0.0, 0.0, false}},
    };
    for (const Config& config : configs) {
        INFO(config.name);
        Twins twins = chunk_boundary_parameters();
        SGD on_cpu = make_optimizer(twins.cpu, config.options);
        SGD on_gpu = make_optimizer(twins.gpu, config.options);
        const std::size_t late = 3;  // gets no gradient in the first two steps
        for (int step = 0; step < 5; ++step) {
            INFO("step " << step);
            if (step == 2) {
                on_cpu.set_lr(0.03);  // a new learning rate mid-run
                on_gpu.set_lr(0.03);
            }
            give_gradients(twins, 1000 + static_cast<std::uint64_t>(step) * 100,
                           step < 2 ? std::vector<std::size_t>{late} : std::vector<std::size_t>{});
            on_cpu.step();
            on_gpu.step();
            require_same_state(on_gpu, on_cpu, twins);
        }
    }
}

TEST_CASE("GPU SGD over a ResNet-like mix of 60 parameters in one launch matches the CPU") {
    Twins twins;
    Generator generator(5);
    for (int i = 0; i < 60; ++i) {
        const auto size = static_cast<std::int64_t>(1 + generator.below(40000));
        add_parameter(twins, {size}, 100 + static_cast<std::uint64_t>(i));
    }
    const SgdOptions options{0.1, 0.9, 0.0, 1e-4, true};
    SGD on_cpu = make_optimizer(twins.cpu, options);
    SGD on_gpu = make_optimizer(twins.gpu, options);
    for (int step = 0; step < 3; ++step) {
        give_gradients(twins, 7000 + static_cast<std::uint64_t>(step) * 100);
        on_cpu.step();
        on_gpu.step();
    }
    require_same_state(on_gpu, on_cpu, twins);
}

TEST_CASE("GPU SGD state_dict matches the CPU's and loads back onto the GPU") {
    const SgdOptions options{0.1, 0.9, 0.0, 1e-4, false};
    Twins twins = chunk_boundary_parameters();
    SGD on_cpu = make_optimizer(twins.cpu, options);
    SGD on_gpu = make_optimizer(twins.gpu, options);
    for (int step = 0; step < 2; ++step) {
        give_gradients(twins, 300 + static_cast<std::uint64_t>(step) * 100, {2});  // parameter 2: no buffer
        on_cpu.step();
        on_gpu.step();
    }
    const auto cpu_state = on_cpu.state_dict();
    const auto gpu_state = on_gpu.state_dict();
    REQUIRE(cpu_state.size() == gpu_state.size());
    for (const auto& [key, expected] : cpu_state) {
        INFO("state " << key);
        REQUIRE(gpu_state.count(key) == 1);
        const Tensor& actual = gpu_state.at(key);
        CHECK(actual.device() == Device::cpu());  // state_dict tensors are host copies
        require_close(actual, expected, 0.0, 0.0);
    }

    SGD restored = make_optimizer(twins.gpu, options);
    restored.load_state_dict(gpu_state);
    CHECK(restored.step_count() == 2);
    CHECK_FALSE(restored.momentum_buffer(0, 2).defined());
    for (int step = 2; step < 4; ++step) {
        give_gradients(twins, 300 + static_cast<std::uint64_t>(step) * 100);
        on_cpu.step();
        restored.step();
        require_same_state(restored, on_cpu, twins);
    }
}

TEST_CASE("GPU SGD rejects float64 parameters and parameters on two devices, changing nothing") {
    const SgdOptions options{0.1, 0.9, 0.0, 0.0, false};
    Tensor doubles = Tensor::ones({4}, DType::Float64).to(gpu()).set_requires_grad(true);
    doubles.set_grad(Tensor::ones({4}, DType::Float64).to(gpu()));
    SGD float64_optimizer = SGD({ParameterGroup{{doubles}, std::nullopt, {"w"}}}, options);
    require_error([&] { float64_optimizer.step(); }, {"SGD", "'w'", "float64", "float32"});

    Tensor on_cpu = Tensor::ones({3}).set_requires_grad(true);
    Tensor on_gpu = Tensor::ones({3}, DType::Float32, gpu()).set_requires_grad(true);
    on_cpu.set_grad(Tensor::ones({3}));
    on_gpu.set_grad(Tensor::ones({3}, DType::Float32, gpu()));
    SGD mixed = SGD({ParameterGroup{{on_cpu, on_gpu}, std::nullopt, {"host", "device"}}}, options);
    require_error([&] { mixed.step(); }, {"SGD", "'device'", "cuda:0", "'host'", "cpu", "one device"});
    CHECK(on_cpu.to_float_vector() == std::vector<float>{1, 1, 1});
    CHECK(on_gpu.to_float_vector() == std::vector<float>{1, 1, 1});
    CHECK_FALSE(mixed.momentum_buffer(0, 0).defined());
    CHECK(mixed.step_count() == 0);
}
