// GPU tests for softmax, log_softmax and cross_entropy (src/ops/loss.cpp's GPU paths,
// kernels/softmax_cross_entropy.cu, src/cuda/cudnn_softmax.cu), each against the CPU op on the
// same inputs.
//
// What is checked:
//   - softmax and log_softmax, both implementations (cudnn, cuda), forward and backward, over
//     dimension 1 and -1 of 2-d tensors, dimension 0, the middle and last dimension of a 3-d
//     tensor and the channels of an NCHW tensor; shapes 128x1000 (the classifier), 3x7 and 1x1
//     (odd and degenerate), rows of magnitude 1e4 (the max subtraction), non-contiguous input;
//   - every rung of the kernel ladder (v1 thread, v2 warp, v3 block per row) on its own,
//     including more rows than one grid covers (the grid-stride loop) and rows longer than a
//     block;
//   - cross_entropy with label smoothing 0 and 0.1, forward and backward, batch 1, labels at 0
//     and classes - 1, an upstream gradient other than 1 (read on the device), logits of 1e4,
//     bitwise-repeatable results (no atomics), and a bad label giving NaN (the documented GPU
//     behaviour) while every other gradient row stays finite;
//   - the errors: float64 on a GPU, logits and labels on different devices, a bad dimension.
// Tolerances: softmax rtol 1e-4, atol 1e-6 (outputs lie in [0, 1] or are log-probabilities;
// float32 exp/log differ from the CPU's by a few ulp, so 1e-6 absolute is 10x the error a
// correct kernel makes and 1000x below a wrong index or a missing max). Cross-entropy gradients
// scale with upstream / N, so their atol is 1e-6 * that scale.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "catch.hpp"
#include "compare.hpp"
#include "cuda_test_support.hpp"
#include "test_support.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/softmax_cross_entropy.hpp"
#endif

using namespace cudagrad;
using cudagrad::testing::gpu;
using cudagrad::testing::ImplementationGuard;
using cudagrad::testing::random_cpu;
using cudagrad::testing::require_close;
using cudagrad::testing::require_error;
using cudagrad::testing::to_gpu_leaf;

namespace {

constexpr double softmax_rtol = 1e-4, softmax_atol = 1e-6;

using SoftmaxFunction = Tensor (*)(const Tensor&, std::int64_t);

// Runs f forward and backward (with a random upstream gradient) on both devices and compares.
void check_softmax_against_cpu(SoftmaxFunction f, const Shape& shape, std::int64_t dimension, double magnitude,
                               std::uint64_t seed) {
    INFO("shape " << shape_string(shape) << ", dimension " << dimension << ", magnitude " << magnitude);
    Tensor x_cpu = random_cpu(shape, seed, -magnitude, magnitude).set_requires_grad(true);
    Tensor upstream = random_cpu(shape, seed + 1);
    Tensor y_cpu = f(x_cpu, dimension);
    y_cpu.backward(upstream);

    Tensor x_gpu = to_gpu_leaf(x_cpu);
    Tensor y_gpu = f(x_gpu, dimension);
    REQUIRE(y_gpu.device() == gpu());
    y_gpu.backward(upstream.to(gpu()));
    require_close(y_gpu, y_cpu, softmax_rtol, softmax_atol);
    REQUIRE(x_gpu.grad().defined());
    require_close(x_gpu.grad(), x_cpu.grad(), softmax_rtol, softmax_atol);
}

Tensor labels_with_ends(std::int64_t batch, std::int64_t classes, std::uint64_t seed) {
    Generator generator(seed);
    std::vector<std::int64_t> labels(static_cast<std::size_t>(batch));
    for (auto& label : labels) label = static_cast<std::int64_t>(generator.below(static_cast<std::uint64_t>(classes)));
    labels.front() = 0;  // the first and the last class, where an off-by-one would show
    labels.back() = classes - 1;
    return Tensor::from_vector(labels, {batch});
}

}  // namespace

TEST_CASE("GPU softmax and log_softmax match the CPU with both implementations, forward and backward") {
    ImplementationGuard guard;
    const std::string implementation_name = GENERATE(std::string("cudnn"), std::string("cuda"));
    set_implementation("softmax", implementation_name);
    const bool logarithm = GENERATE(false, true);
    const SoftmaxFunction f = logarithm ? static_cast<SoftmaxFunction>(log_softmax)
                                        : static_cast<SoftmaxFunction>(softmax);
    INFO("implementation " << implementation_name << (logarithm ? ", log_softmax" : ", softmax"));
    std::uint64_t seed = 100;
    check_softmax_against_cpu(f, {128, 1000}, 1, 3.0, ++seed);
    check_softmax_against_cpu(f, {128, 1000}, -1, 3.0, ++seed);
    check_softmax_against_cpu(f, {3, 7}, 1, 2.0, ++seed);
    check_softmax_against_cpu(f, {3, 7}, 0, 2.0, ++seed);
    check_softmax_against_cpu(f, {1, 1}, 1, 1.0, ++seed);
    check_softmax_against_cpu(f, {1, 1}, -1, 1.0, ++seed);
    check_softmax_against_cpu(f, {2, 5, 7}, 1, 2.0, ++seed);    // middle: inner = 7
    check_softmax_against_cpu(f, {2, 5, 7}, -1, 2.0, ++seed);
    check_softmax_against_cpu(f, {3, 33, 5, 5}, 1, 2.0, ++seed);  // NCHW channels
    check_softmax_against_cpu(f, {16, 1000}, 1, 1e4, ++seed);   // stability: exp(1e4) overflows
    check_softmax_against_cpu(f, {4, 3000}, 1, 5.0, ++seed);    // rows longer than a block
}

TEST_CASE("GPU softmax of a non-contiguous input matches the CPU") {
    ImplementationGuard guard;
    set_implementation("softmax", GENERATE(std::string("cudnn"), std::string("cuda")));
    Tensor x = random_cpu({40, 9}, 7, -3.0, 3.0);
    Tensor expected = log_softmax(x.transpose(0, 1), 1);
    require_close(log_softmax(x.to(gpu()).transpose(0, 1), 1), expected, softmax_rtol, softmax_atol);
}

#ifdef CUDAGRAD_WITH_CUDA
TEST_CASE("every version of the GPU softmax kernel matches the CPU") {
    make_device_current(gpu());
    struct Case {
        std::int64_t rows, extent;
    };
    // 40000 rows: more than one capped grid of v2 (8 rows per block); 5000 x 5 likewise for v3.
    const Case cases[] = {{128, 1000}, {3, 7}, {1, 1}, {5, 3000}, {40000, 3}, {5000, 5}};
    const int version = GENERATE(1, 2, 3);
    const bool logarithm = GENERATE(false, true);
    for (const Case& shape : cases) {
        INFO("version " << version << ", rows " << shape.rows << ", extent " << shape.extent
                        << (logarithm ? ", log_softmax" : ", softmax"));
        Tensor x = random_cpu({shape.rows, shape.extent}, 31, -4.0, 4.0).set_requires_grad(true);
        Tensor upstream = random_cpu({shape.rows, shape.extent}, 32);
        Tensor expected = logarithm ? log_softmax(x, 1) : softmax(x, 1);
        expected.backward(upstream);

        Tensor x_gpu = x.detach().to(gpu()), y_gpu = Tensor::empty(x.shape(), DType::Float32, gpu());
        Tensor expected_gpu = expected.detach().to(gpu()), upstream_gpu = upstream.to(gpu());
        Tensor dx_gpu = Tensor::empty(x.shape(), DType::Float32, gpu());
        const float* in = x_gpu.data<float>();
        float* out = y_gpu.data<float>();
        const float* y = expected_gpu.data<float>();  // backward from the same y as the CPU's
        const float* g = upstream_gpu.data<float>();
        float* dx = dx_gpu.data<float>();
        if (version == 1) {
            cuda::softmax_forward_v1_thread_per_row(in, out, shape.rows, shape.extent, logarithm);
            cuda::softmax_backward_v1_thread_per_row(y, g, dx, shape.rows, shape.extent, logarithm);
        } else if (version == 2) {
            cuda::softmax_forward_v2_warp_per_row(in, out, shape.rows, shape.extent, logarithm);
            cuda::softmax_backward_v2_warp_per_row(y, g, dx, shape.rows, shape.extent, logarithm);
        } else {
            cuda::softmax_forward_v3_block_per_row(in, out, shape.rows, shape.extent, logarithm);
            cuda::softmax_backward_v3_block_per_row(y, g, dx, shape.rows, shape.extent, logarithm);
        }
        require_close(y_gpu, expected, softmax_rtol, softmax_atol);
        require_close(dx_gpu, x.grad(), softmax_rtol, softmax_atol);
    }
}
#endif

TEST_CASE("GPU cross_entropy matches the CPU, forward and backward, with and without smoothing") {
    struct Case {
        std::int64_t batch, classes;
        double magnitude;
    };
    const Case cases[] = {{128, 1000, 3.0}, {3, 7, 2.0}, {1, 1, 1.0}, {1, 10, 2.0}, {16, 1000, 1e4}, {2, 5000, 3.0}};
    const double smoothing = GENERATE(0.0, 0.1);
    const double upstream_value = GENERATE(1.0, 2.5);
    for (const Case& c : cases) {
        INFO("batch " << c.batch << ", classes " << c.classes << ", magnitude " << c.magnitude << ", smoothing "
                      << smoothing << ", upstream gradient " << upstream_value);
        Tensor logits = random_cpu({c.batch, c.classes}, 41, -c.magnitude, c.magnitude).set_requires_grad(true);
        Tensor labels = labels_with_ends(c.batch, c.classes, 42);
        Tensor loss = cross_entropy(logits, labels, smoothing);
        loss.backward(Tensor::full({}, upstream_value));

        Tensor logits_gpu = to_gpu_leaf(logits);
        Tensor loss_gpu = cross_entropy(logits_gpu, labels.to(gpu()), smoothing);
        REQUIRE(loss_gpu.device() == gpu());
        REQUIRE(loss_gpu.dim() == 0);
        loss_gpu.backward(Tensor::full({}, upstream_value, DType::Float32, gpu()));
        require_close(loss_gpu, loss, 1e-5, 1e-6);
        const double scale = upstream_value / static_cast<double>(c.batch);
        require_close(logits_gpu.grad(), logits.grad(), 1e-4, 1e-6 * scale);
    }
}

TEST_CASE("GPU cross_entropy is bitwise repeatable") {
    Tensor logits = random_cpu({128, 1000}, 51, -3.0, 3.0).to(gpu());
    Tensor labels = labels_with_ends(128, 1000, 52).to(gpu());
    const double first = cross_entropy(logits, labels, 0.1).item();
    for (int run = 0; run < 3; ++run) CHECK(cross_entropy(logits, labels, 0.1).item() == first);
}

TEST_CASE("a GPU cross_entropy with a label out of range gives NaN, not an error") {
    // Documented behaviour (src/cuda/softmax_cross_entropy.hpp): checking labels on the device
    // would need a host synchronisation per step; a bad label poisons the loss instead.
    const std::int64_t bad_label = GENERATE(std::int64_t{-1}, std::int64_t{7});
    Tensor logits = to_gpu_leaf(random_cpu({3, 7}, 61).set_requires_grad(true));
    Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{2, bad_label, 6}, {3}).to(gpu());
    Tensor loss = cross_entropy(logits, labels, 0.0);
    CHECK(std::isnan(loss.item()));
    loss.backward();
    const Tensor gradient = logits.grad().to(Device::cpu());
    for (std::int64_t c = 0; c < 7; ++c) {
        CHECK(std::isfinite(gradient.at({0, c})));
        CHECK(std::isnan(gradient.at({1, c})));
        CHECK(std::isfinite(gradient.at({2, c})));
    }
}

TEST_CASE("GPU softmax and cross_entropy reject bad inputs with clear errors") {
    Tensor logits = random_cpu({4, 5}, 71).to(gpu());
    Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{0, 1, 2, 3}, {4});
    require_error([&] { cross_entropy(logits, labels); }, {"cross_entropy", "different devices", "cpu", "cuda:0"});
    require_error([&] { cross_entropy(logits.to(DType::Float64), labels.to(gpu())); }, {"cross_entropy", "float32"});
    require_error([&] { softmax(logits.to(DType::Float64), 1); }, {"softmax", "float32"});
    require_error([&] { log_softmax(logits, 2); }, {"log_softmax", "out of range"});
    require_error([&] { cross_entropy(logits, labels.to(gpu()).to(DType::Float32)); }, {"cross_entropy", "int64"});
}
