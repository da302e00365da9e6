// GPU tests for max_pool2d, avg_pool2d, adaptive_avg_pool2d and global_avg_pool2d
// (src/ops/pooling.cpp): cuDNN and cudagrad's kernels (kernels/pooling.cu), forward and backward,
// against the CPU op on the same inputs.
//
// What is checked:
//   * ResNet's 3x3/2 pad 1 max pool on 2x64x112x112, and odd geometries (3x5x7x9 with a 3x2 kernel,
//     strides 2x1, padding 1x1; batch 1 with 33 channels of 3x3; a 2x2/2 pool that drops a row);
//   * max-pool ties (a constant input, and values drawn from {0, 0.5, 1}) and NaN on our kernel:
//     the gradient must go to the FIRST maximum in window order, exactly as the CPU. cuDNN does
//     not document its tie-breaking, so it is compared on inputs without ties (a permutation of
//     distinct values);
//   * the v1 (atomic scatter) max-pool backward, called directly;
//   * avg_pool2d with and without count_include_pad;
//   * adaptive 7x7 -> 3x3 and -> 1x1, and windows that overlap or repeat (7x9 -> 4x5, 3x3 -> 5x4);
//   * global average pool on ResNet's 4x2048x7x7 and odd planes;
//   * a clear error for float64 GPU input.
// Tolerances: our max pool selects values and sums dy in the CPU's order, so it must match
// exactly (0, 0). The averages accumulate in double and divide as the CPU: rtol 1e-5 / atol 1e-6.
// cuDNN (float sums, its own order): rtol 1e-4 / atol 1e-5; its max-pool backward may add a
// position's gradients in another order: rtol 1e-5 / atol 1e-6.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <cudagrad/cudagrad.hpp>

#include "catch.hpp"
#include "cuda_test_support.hpp"
#include "test_support.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/pooling.hpp"
#endif

namespace {

using namespace cudagrad;
using cudagrad::testing::gpu;
using cudagrad::testing::ImplementationGuard;
using cudagrad::testing::random_cpu;
using cudagrad::testing::require_close;
using cudagrad::testing::require_error;

Pool2dOptions pool(std::int64_t kernel_h, std::int64_t kernel_w, std::int64_t stride_h, std::int64_t stride_w,
                   std::int64_t padding_h, std::int64_t padding_w, bool count_include_pad = true) {
    Pool2dOptions options;
    options.kernel_h = kernel_h;
    options.kernel_w = kernel_w;
    options.stride_h = stride_h;
    options.stride_w = stride_w;
    options.padding_h = padding_h;
    options.padding_w = padding_w;
    options.count_include_pad = count_include_pad;
    return options;
}

struct Geometry {
    Shape shape;
    Pool2dOptions options;
};

const std::vector<Geometry>& geometries() {
    static const std::vector<Geometry> list = {
        {{2, 64, 112, 112}, pool(3, 3, 2, 2, 1, 1)},  // ResNet's stem max pool
        {{3, 5, 7, 9}, pool(3, 2, 2, 1, 1, 1)},
        {{1, 33, 3, 3}, pool(3, 3, 2, 2, 1, 1)},
        {{2, 3, 7, 8}, pool(2, 2, 2, 2, 0, 0)},  // the last row of 7 falls outside every window
    };
    return list;
}

// Distinct values in [-0.5, 0.5), in a scrambled order: a window never holds a tie.
// (i * 7919) mod n visits every residue once when n is not a multiple of the prime 7919.
Tensor distinct_values(const Shape& shape) {
    const std::int64_t count = shape_numel(shape);
    REQUIRE(count % 7919 != 0);
    REQUIRE(count < (std::int64_t{1} << 24));  // float holds every value i / count exactly apart
    std::vector<float> values(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) {
        values[static_cast<std::size_t>(i)] =
            static_cast<float>(static_cast<double>((i * 7919) % count) / static_cast<double>(count) - 0.5);
    }
    return Tensor::from_vector(values, shape);
}

// Values from {0, 0.5, 1}: ties in almost every window.
Tensor tied_values(const Shape& shape, std::uint64_t seed) {
    std::vector<float> values = random_cpu(shape, seed, 0.0, 3.0).to_float_vector();
    for (float& value : values) value = std::floor(value) * 0.5f;
    return Tensor::from_vector(values, shape);
}

enum class Pool { Max, Avg, Adaptive, Global };

struct Outcome {
    Tensor y, dx;
};

Outcome run(Pool kind, const Tensor& input, const Pool2dOptions& options, std::int64_t out_h, std::int64_t out_w,
            Device device) {
    Tensor x = input.clone().to(device).set_requires_grad(true);
    Tensor y;
    switch (kind) {
        case Pool::Max: y = max_pool2d(x, options); break;
        case Pool::Avg: y = avg_pool2d(x, options); break;
        case Pool::Adaptive: y = adaptive_avg_pool2d(x, out_h, out_w); break;
        case Pool::Global: y = global_avg_pool2d(x); break;
    }
    y.backward(random_cpu(y.shape(), 99).to(device));
    return {y, x.grad()};
}

void compare(Pool kind, const Tensor& input, const Pool2dOptions& options, double rtol, double atol,
             std::int64_t out_h = 0, std::int64_t out_w = 0) {
    const Outcome expected = run(kind, input, options, out_h, out_w, Device::cpu());
    const Outcome actual = run(kind, input, options, out_h, out_w, gpu());
    require_close(actual.y, expected.y, rtol, atol);
    require_close(actual.dx, expected.dx, rtol, atol);
}

}  // namespace

TEST_CASE("cuda max_pool2d matches the CPU", "[cuda][pooling]") {
    const ImplementationGuard guard;
    for (const Geometry& g : geometries()) {
        INFO("input " << shape_string(g.shape) << " kernel " << g.options.kernel_h << "x" << g.options.kernel_w);
        set_implementation("max_pool", "cuda");
        compare(Pool::Max, random_cpu(g.shape, 1), g.options, 0.0, 0.0);
        compare(Pool::Max, tied_values(g.shape, 2), g.options, 0.0, 0.0);
        compare(Pool::Max, Tensor::full(g.shape, 0.25), g.options, 0.0, 0.0);  // every window one big tie
        compare(Pool::Max, distinct_values(g.shape), g.options, 0.0, 0.0);
        set_implementation("max_pool", "cudnn");
        compare(Pool::Max, distinct_values(g.shape), g.options, 1e-5, 1e-6);
    }
}

TEST_CASE("cuda max_pool2d propagates NaN as the CPU", "[cuda][pooling]") {
    const ImplementationGuard guard;
    set_implementation("max_pool", "cuda");
    std::vector<float> values = random_cpu({2, 3, 9, 9}, 5).to_float_vector();
    for (std::size_t i = 0; i < values.size(); i += 17) values[i] = std::numeric_limits<float>::quiet_NaN();
    compare(Pool::Max, Tensor::from_vector(values, {2, 3, 9, 9}), pool(3, 3, 2, 2, 1, 1), 0.0, 0.0);
}

#ifdef CUDAGRAD_WITH_CUDA
TEST_CASE("cuda max_pool2d v1 atomic scatter backward matches the CPU", "[cuda][pooling]") {
    for (const Geometry& g : geometries()) {
        INFO("input " << shape_string(g.shape));
        const Tensor x = tied_values(g.shape, 3);
        const Outcome expected = run(Pool::Max, x, g.options, 0, 0, Device::cpu());
        cuda::PoolGeometry geometry;
        geometry.batch = g.shape[0];
        geometry.channels = g.shape[1];
        geometry.input_h = g.shape[2];
        geometry.input_w = g.shape[3];
        geometry.output_h = expected.y.size(2);
        geometry.output_w = expected.y.size(3);
        geometry.kernel_h = g.options.kernel_h;
        geometry.kernel_w = g.options.kernel_w;
        geometry.stride_h = g.options.stride_h;
        geometry.stride_w = g.options.stride_w;
        geometry.padding_h = g.options.padding_h;
        geometry.padding_w = g.options.padding_w;
        const Tensor gx = x.to(gpu());
        const Tensor dy = random_cpu(expected.y.shape(), 99).to(gpu());
        Tensor y = Tensor::empty(expected.y.shape(), DType::Float32, gpu());
        Tensor argmax = Tensor::empty(expected.y.shape(), DType::Float32, gpu());  // int32 storage
        Tensor dx = Tensor::empty(g.shape, DType::Float32, gpu());
        cuda::max_pool2d_forward(gx.data<float>(), y.data<float>(), static_cast<std::int32_t*>(argmax.raw_data()),
                                 geometry);
        cuda::max_pool2d_backward_v1_atomic_scatter(dy.data<float>(), static_cast<std::int32_t*>(argmax.raw_data()),
                                                    dx.data<float>(), geometry);
        require_close(y, expected.y, 0.0, 0.0);
        // The atomics add a position's gradients in any order: a rounding apart at most.
        require_close(dx, expected.dx, 1e-6, 1e-6);
    }
}
#endif

TEST_CASE("cuda avg_pool2d matches the CPU with and without count_include_pad", "[cuda][pooling]") {
    const ImplementationGuard guard;
    for (const std::string implementation : {"cuda", "cudnn"}) {
        set_implementation("avg_pool", implementation);
        const double rtol = implementation == "cuda" ? 1e-5 : 1e-4, atol = implementation == "cuda" ? 1e-6 : 1e-5;
        for (const Geometry& g : geometries()) {
            for (const bool include_pad : {true, false}) {
                INFO(implementation << " input " << shape_string(g.shape) << " count_include_pad " << include_pad);
                Pool2dOptions options = g.options;
                options.count_include_pad = include_pad;
                compare(Pool::Avg, random_cpu(g.shape, 4), options, rtol, atol);
            }
        }
    }
}

TEST_CASE("cuda adaptive_avg_pool2d matches the CPU", "[cuda][pooling]") {
    struct Adaptive {
        Shape shape;
        std::int64_t out_h, out_w;
    };
    for (const Adaptive& a : {Adaptive{{2, 2048, 7, 7}, 3, 3}, Adaptive{{2, 2048, 7, 7}, 1, 1},
                              Adaptive{{3, 5, 7, 9}, 4, 5}, Adaptive{{1, 33, 3, 3}, 5, 4},
                              Adaptive{{2, 64, 112, 112}, 7, 7}}) {
        INFO("input " << shape_string(a.shape) << " -> " << a.out_h << "x" << a.out_w);
        compare(Pool::Adaptive, random_cpu(a.shape, 6), Pool2dOptions{}, 1e-5, 1e-6, a.out_h, a.out_w);
    }
}

TEST_CASE("cuda global_avg_pool2d matches the CPU", "[cuda][pooling]") {
    for (const Shape& shape : {Shape{4, 2048, 7, 7}, Shape{3, 5, 7, 9}, Shape{1, 33, 3, 3}, Shape{2, 64, 112, 112}}) {
        INFO("input " << shape_string(shape));
        // Values around 1: the double sums of both devices agree to far below float precision.
        compare(Pool::Global, random_cpu(shape, 7, 0.5, 1.5), Pool2dOptions{}, 1e-5, 1e-6);
    }
}

TEST_CASE("cuda pooling errors are clear", "[cuda][pooling]") {
    const Tensor x64 = Tensor::zeros({1, 2, 4, 4}, DType::Float64, gpu());
    require_error([&] { max_pool2d(x64, pool(2, 2, 2, 2, 0, 0)); }, {"max_pool2d", "float64", "float32"});
    require_error([&] { avg_pool2d(x64, pool(2, 2, 2, 2, 0, 0)); }, {"avg_pool2d", "float64", "float32"});
    require_error([&] { adaptive_avg_pool2d(x64, 2, 2); }, {"adaptive_avg_pool2d", "float64", "float32"});
    require_error([&] { global_avg_pool2d(x64); }, {"global_avg_pool2d", "float64", "float32"});
}
