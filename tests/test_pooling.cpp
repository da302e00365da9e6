// Tests for max_pool2d, avg_pool2d, adaptive_avg_pool2d, global_avg_pool2d (src/ops/pooling.cpp,
// src/cpu/pooling.cpp).
//
// What is checked:
//   * forward values on small inputs worked out by hand (ResNet's 3x3/2 pad 1 window clipping,
//     both count_include_pad divisors, adaptive windows that overlap);
//   * ties: the gradient goes to the first maximum in row-major window order; NaN propagates;
//   * finite-difference gradients (float64) on odd sizes, overlapping windows and padding. Max
//     pooling inputs are a random permutation of distinct values, so no window holds a tie
//     and the numeric derivative is valid;
//   * every kernel, forward and backward, against plain loops written here, float32 and float64,
//     on shapes large enough to run several parallel chunks;
//   * bad input: each error names the op and the shape or parameter.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <cudagrad/cudagrad.hpp>

#include "catch.hpp"
#include "test_support.hpp"
#include "compare.hpp"
#include "gradcheck.hpp"

namespace {

using namespace cudagrad;
using cudagrad::testing::require_error;
using cudagrad::testing::gradcheck;
using cudagrad::testing::random_input;
using cudagrad::testing::require_close;

Pool2dOptions pool(std::int64_t kernel, std::int64_t stride, std::int64_t padding, bool count_include_pad = true) {
    Pool2dOptions options;
    options.kernel_h = options.kernel_w = kernel;
    options.stride_h = options.stride_w = stride;
    options.padding_h = options.padding_w = padding;
    options.count_include_pad = count_include_pad;
    return options;
}

// A float64 input requiring a gradient whose values are a random permutation of distinct
// numbers 1/n apart (far wider than gradcheck's step), so no pooling window holds a tie.
Tensor distinct_input(const Shape& shape, Generator& generator) {
    const std::int64_t count = shape_numel(shape);
    std::vector<double> values(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) values[static_cast<std::size_t>(i)] = static_cast<double>(i) / count - 0.5;
    for (std::int64_t i = count - 1; i > 0; --i) {
        std::swap(values[static_cast<std::size_t>(i)], values[generator.below(static_cast<std::uint64_t>(i + 1))]);
    }
    Tensor tensor = Tensor::from_vector(values, shape);
    tensor.set_requires_grad(true);
    return tensor;
}

void check_gradient(const std::function<Tensor(const Tensor&)>& op, const Tensor& x) {
    auto result = gradcheck([&](const std::vector<Tensor>& inputs) { return op(inputs[0]); }, {x});
    INFO(result.report);
    CHECK(result.passed);
}

// ---- plain-loop references: one window per output, over (planes, H, W) as doubles ----
struct Reference {
    Shape output_shape;
    std::vector<double> y, dx;
};

// kind: 0 max, 1 avg. Window rows [p*stride - pad, +kernel) clipped to the input.
Reference reference_pool(const std::vector<double>& x, const std::vector<double>& dy_source, const Shape& shape,
                         const Pool2dOptions& o, int kind) {
    const std::int64_t planes = shape[0] * shape[1], H = shape[2], W = shape[3];
    const std::int64_t P = (H + 2 * o.padding_h - o.kernel_h) / o.stride_h + 1;
    const std::int64_t Q = (W + 2 * o.padding_w - o.kernel_w) / o.stride_w + 1;
    Reference result{{shape[0], shape[1], P, Q}, std::vector<double>(static_cast<std::size_t>(planes * P * Q)),
                     std::vector<double>(x.size(), 0.0)};
    for (std::int64_t plane = 0; plane < planes; ++plane) {
        for (std::int64_t p = 0; p < P; ++p) {
            for (std::int64_t q = 0; q < Q; ++q) {
                const std::size_t out = static_cast<std::size_t>((plane * P + p) * Q + q);
                const double dy = dy_source[out];
                double best = -std::numeric_limits<double>::infinity(), total = 0.0;
                std::int64_t best_at = -1, inside = 0;
                for (std::int64_t i = 0; i < o.kernel_h; ++i) {
                    for (std::int64_t j = 0; j < o.kernel_w; ++j) {
                        const std::int64_t h = p * o.stride_h - o.padding_h + i, w = q * o.stride_w - o.padding_w + j;
                        if (h < 0 || h >= H || w < 0 || w >= W) continue;
                        const std::int64_t at = (plane * H + h) * W + w;
                        ++inside;
                        total += x[static_cast<std::size_t>(at)];
                        if (best_at < 0 || x[static_cast<std::size_t>(at)] > best) {
                            best = x[static_cast<std::size_t>(at)];
                            best_at = at;
                        }
                    }
                }
                if (kind == 0) {
                    result.y[out] = best;
                    result.dx[static_cast<std::size_t>(best_at)] += dy;
                    continue;
                }
                const double divisor = o.count_include_pad ? static_cast<double>(o.kernel_h * o.kernel_w)
                                                           : static_cast<double>(inside);
                result.y[out] = total / divisor;
                for (std::int64_t h = std::max<std::int64_t>(0, p * o.stride_h - o.padding_h);
                     h < std::min(H, p * o.stride_h - o.padding_h + o.kernel_h); ++h)
                    for (std::int64_t w = std::max<std::int64_t>(0, q * o.stride_w - o.padding_w);
                         w < std::min(W, q * o.stride_w - o.padding_w + o.kernel_w); ++w)
                        result.dx[static_cast<std::size_t>((plane * H + h) * W + w)] += dy / divisor;
            }
        }
    }
    return result;
}

Reference reference_adaptive(const std::vector<double>& x, const std::vector<double>& dy_source, const Shape& shape,
                             std::int64_t P, std::int64_t Q) {
    const std::int64_t planes = shape[0] * shape[1], H = shape[2], W = shape[3];
    Reference result{{shape[0], shape[1], P, Q}, std::vector<double>(static_cast<std::size_t>(planes * P * Q)),
                     std::vector<double>(x.size(), 0.0)};
    for (std::int64_t plane = 0; plane < planes; ++plane) {
        for (std::int64_t p = 0; p < P; ++p) {
            // start = floor(p*H/P), end = ceil((p+1)*H/P), in floating point as the formula reads.
            const auto h0 = static_cast<std::int64_t>(std::floor(static_cast<double>(p * H) / P));
            const auto h1 = static_cast<std::int64_t>(std::ceil(static_cast<double>((p + 1) * H) / P));
            for (std::int64_t q = 0; q < Q; ++q) {
                const auto w0 = static_cast<std::int64_t>(std::floor(static_cast<double>(q * W) / Q));
                const auto w1 = static_cast<std::int64_t>(std::ceil(static_cast<double>((q + 1) * W) / Q));
                const std::size_t out = static_cast<std::size_t>((plane * P + p) * Q + q);
                const double count = static_cast<double>((h1 - h0) * (w1 - w0));
                double total = 0.0;
                for (std::int64_t h = h0; h < h1; ++h)
                    for (std::int64_t w = w0; w < w1; ++w) {
                        total += x[static_cast<std::size_t>((plane * H + h) * W + w)];
                        result.dx[static_cast<std::size_t>((plane * H + h) * W + w)] += dy_source[out] / count;
                    }
                result.y[out] = total / count;
            }
        }
    }
    return result;
}

enum class Kind { Max, Avg, Adaptive, Global };

void compare_with_reference(Kind kind, const Shape& shape, const Pool2dOptions& options, std::int64_t out_h,
                            std::int64_t out_w) {
    for (DType dtype : {DType::Float32, DType::Float64}) {
        INFO("shape " << shape_string(shape) << ", " << dtype_name(dtype) << ", kernel " << options.kernel_h << "x"
                      << options.kernel_w << " stride " << options.stride_h << " padding " << options.padding_h
                      << " count_include_pad " << options.count_include_pad << " output " << out_h << "x" << out_w);
        Generator generator(shape_numel(shape) + 17);
        Tensor x = distinct_input(shape, generator).detach().to(dtype);
        x.set_requires_grad(true);
        Tensor y;
        switch (kind) {
            case Kind::Max: y = max_pool2d(x, options); break;
            case Kind::Avg: y = avg_pool2d(x, options); break;
            case Kind::Adaptive: y = adaptive_avg_pool2d(x, out_h, out_w); break;
            case Kind::Global: y = global_avg_pool2d(x); break;
        }
        Tensor dy = randn(y.shape(), DType::Float64, generator).to(dtype);
        y.backward(dy);
        const std::vector<double> values = x.to_double_vector(), gradients = dy.to_double_vector();
        Reference expected;
        switch (kind) {
            case Kind::Max: expected = reference_pool(values, gradients, shape, options, 0); break;
            case Kind::Avg: expected = reference_pool(values, gradients, shape, options, 1); break;
            case Kind::Adaptive: expected = reference_adaptive(values, gradients, shape, out_h, out_w); break;
            case Kind::Global: expected = reference_adaptive(values, gradients, shape, 1, 1); break;
        }
        const double tolerance = dtype == DType::Float32 ? 1e-5 : 1e-12;
        require_close(y, Tensor::from_vector(expected.y, expected.output_shape), tolerance, tolerance);
        require_close(x.grad(), Tensor::from_vector(expected.dx, shape), tolerance, tolerance);
    }
}

}  // namespace

TEST_CASE("max_pool2d forward matches a hand computation", "[pooling]") {
    Tensor x = Tensor::from_vector(std::vector<float>{1, 5, 2, 0, 3, 4, 8, 7, 9, 6, 10, 11, 12, 15, 14, 13}, {1, 1, 4, 4});
    require_close(max_pool2d(x, pool(2, 2, 0)), Tensor::from_vector(std::vector<float>{5, 8, 15, 14}, {1, 1, 2, 2}), 0, 0);
    // ResNet's 3x3/2 pad 1: output 2x2; the windows are rows/columns [-1, 2) and [1, 4), clipped.
    require_close(max_pool2d(x, pool(3, 2, 1)), Tensor::from_vector(std::vector<float>{5, 8, 15, 15}, {1, 1, 2, 2}), 0, 0);
    // Rectangular kernel and stride: 1x3 windows, stride (1, 1), padding (0, 1).
    Pool2dOptions wide;
    wide.kernel_h = 1;
    wide.kernel_w = 3;
    wide.padding_w = 1;
    Tensor row = Tensor::from_vector(std::vector<float>{3, 1, 4, 1, 5}, {1, 1, 1, 5});
    require_close(max_pool2d(row, wide), Tensor::from_vector(std::vector<float>{3, 4, 4, 5, 5}, {1, 1, 1, 5}), 0, 0);
}

TEST_CASE("max_pool2d sends the gradient of a tie to the first maximum", "[pooling]") {
    // Window 1 is all 7s: its first position (0, 0) wins. Window 2 holds 1, 2 / 2, 2: the first 2
    // in row-major order is (0, 3).
    Tensor x = Tensor::from_vector(std::vector<double>{7, 7, 1, 2, 7, 7, 2, 2}, {1, 1, 2, 4});
    x.set_requires_grad(true);
    Tensor y = max_pool2d(x, pool(2, 2, 0));
    y.backward(Tensor::from_vector(std::vector<double>{10, 20}, {1, 1, 1, 2}));
    CHECK(x.grad().to_double_vector() == std::vector<double>{10, 0, 0, 20, 0, 0, 0, 0});

    // Overlapping windows (3x3, stride 1) on a constant input: every window picks its own first
    // position, and the gradients of windows sharing a winner add up.
    Tensor flat = Tensor::full({1, 1, 3, 4}, 1.0, DType::Float64);
    flat.set_requires_grad(true);
    max_pool2d(flat, pool(3, 1, 0)).backward(Tensor::from_vector(std::vector<double>{1, 2}, {1, 1, 1, 2}));
    CHECK(flat.grad().to_double_vector() == std::vector<double>{1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});

    // With padding, a window whose real values are all -infinity reports -infinity and still
    // routes its gradient to a real position (the first one).
    const double inf = std::numeric_limits<double>::infinity();
    Tensor negative = Tensor::full({1, 1, 2, 2}, -inf, DType::Float64);
    negative.set_requires_grad(true);
    Tensor y_negative = max_pool2d(negative, pool(2, 1, 1));  // 3x3 output
    CHECK(y_negative.to_double_vector() == std::vector<double>(9, -inf));
    y_negative.backward(Tensor::ones({1, 1, 3, 3}, DType::Float64));
    // Windows whose first real position is (0, 0): output rows and columns 0 and 1, four of them.
    CHECK(negative.grad().to_double_vector() == std::vector<double>{4, 2, 2, 1});
}

TEST_CASE("max_pool2d resolves ties like the plain loops on inputs full of ties", "[pooling]") {
    // Values from {0, 1, 2}: most windows hold several maxima, in the interior (vectorised) path
    // and in the clipped border windows alike.
    const std::vector<Shape> shapes = {{2, 3, 7, 9}, {1, 2, 16, 300}, {3, 4, 11, 12}};
    for (const Shape& shape : shapes) {
        for (const Pool2dOptions& options : {pool(3, 2, 1), pool(2, 2, 0), pool(3, 1, 1), pool(5, 3, 2)}) {
            for (DType dtype : {DType::Float32, DType::Float64}) {
                INFO("shape " << shape_string(shape) << " kernel " << options.kernel_h << " stride "
                              << options.stride_h << " padding " << options.padding_h << " " << dtype_name(dtype));
                Generator generator(shape_numel(shape));
                std::vector<double> values(static_cast<std::size_t>(shape_numel(shape)));
                for (double& value : values) value = static_cast<double>(generator.below(3));
                Tensor x = Tensor::from_vector(values, shape).to(dtype);
                x.set_requires_grad(true);
                Tensor y = max_pool2d(x, options);
                Tensor dy = randn(y.shape(), DType::Float64, generator).to(dtype);
                y.backward(dy);
                Reference expected = reference_pool(values, dy.to_double_vector(), shape, options, 0);
                require_close(y, Tensor::from_vector(expected.y, expected.output_shape), 0, 0);
                const double tolerance = dtype == DType::Float32 ? 1e-5 : 1e-12;
                require_close(x.grad(), Tensor::from_vector(expected.dx, shape), tolerance, tolerance);
            }
        }
    }
}

TEST_CASE("max_pool2d propagates NaN", "[pooling]") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    Tensor x = Tensor::from_vector(std::vector<float>{1, nan, 3, 4, 5, 6, 7, 8}, {1, 1, 2, 4});
    std::vector<float> y = max_pool2d(x, pool(2, 2, 0)).to_float_vector();
    CHECK(std::isnan(y[0]));
    CHECK(y[1] == 8.0f);
    // In a clipped border window too (3x3/2 pad 1: output (0, 0) covers rows and columns 0-1),
    // and without a gradient (the path that records no indices).
    Tensor border = Tensor::from_vector(std::vector<float>{nan, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {1, 1, 4, 4});
    std::vector<float> pooled = max_pool2d(border, pool(3, 2, 1)).to_float_vector();
    CHECK(std::isnan(pooled[0]));
    CHECK(pooled[3] == 15.0f);
    // A NaN in an interior window, and a NaN that is not first in its window, with indices.
    Tensor interior = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, nan, 10, 11, 12, 13, 14, 15}, {1, 1, 4, 4});
    interior.set_requires_grad(true);
    Tensor interior_pooled = max_pool2d(interior, pool(2, 2, 0));
    std::vector<float> interior_values = interior_pooled.to_float_vector();
    CHECK(std::isnan(interior_values[2]));
    CHECK(interior_values[3] == 15.0f);
    interior_pooled.backward(Tensor::ones({1, 1, 2, 2}));
    CHECK(interior.grad().to_float_vector()[9] == 1.0f);  // the NaN after the 8 won its window
}

TEST_CASE("max_pool2d gradients match finite differences", "[pooling][gradcheck]") {
    Generator generator(1);
    Pool2dOptions asymmetric;
    asymmetric.kernel_h = 3;
    asymmetric.kernel_w = 2;
    asymmetric.stride_h = 2;
    asymmetric.stride_w = 1;
    asymmetric.padding_h = 1;
    asymmetric.padding_w = 1;
    check_gradient([](const Tensor& x) { return max_pool2d(x, pool(3, 2, 1)); }, distinct_input({2, 3, 7, 9}, generator));
    check_gradient([](const Tensor& x) { return max_pool2d(x, pool(3, 2, 1)); }, distinct_input({1, 1, 4, 4}, generator));
    check_gradient([](const Tensor& x) { return max_pool2d(x, pool(2, 2, 0)); }, distinct_input({2, 5, 6, 8}, generator));
    check_gradient([](const Tensor& x) { return max_pool2d(x, pool(2, 2, 0)); }, distinct_input({1, 2, 7, 5}, generator));
    check_gradient([](const Tensor& x) { return max_pool2d(x, pool(3, 1, 0)); }, distinct_input({2, 3, 5, 6}, generator));
    check_gradient([&](const Tensor& x) { return max_pool2d(x, asymmetric); }, distinct_input({1, 3, 5, 7}, generator));
}

TEST_CASE("avg_pool2d forward matches a hand computation for both divisor rules", "[pooling]") {
    Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
    // 3x3, stride 1, pad 1: corner window holds 1, 2, 4, 5 (sum 12) and 5 padded zeros.
    std::vector<double> included = avg_pool2d(x, pool(3, 1, 1, true)).to_double_vector();
    std::vector<double> excluded = avg_pool2d(x, pool(3, 1, 1, false)).to_double_vector();
    CHECK(std::abs(included[0] - 12.0 / 9.0) < 1e-15);
    CHECK(std::abs(excluded[0] - 12.0 / 4.0) < 1e-15);
    CHECK(std::abs(included[1] - 21.0 / 9.0) < 1e-15);  // 1+2+3+4+5+6
    CHECK(std::abs(excluded[1] - 21.0 / 6.0) < 1e-15);
    CHECK(std::abs(included[4] - 5.0) < 1e-15);
    CHECK(std::abs(excluded[4] - 5.0) < 1e-15);
    // 2x2/2 without padding on 3x3 drops the last row and column: one output, (1+2+4+5)/4.
    std::vector<double> strided = avg_pool2d(x, pool(2, 2, 0)).to_double_vector();
    CHECK(strided == std::vector<double>{3.0});
}

TEST_CASE("avg_pool2d gradients match finite differences", "[pooling][gradcheck]") {
    Generator generator(2);
    for (bool include : {true, false}) {
        INFO("count_include_pad " << include);
        check_gradient([=](const Tensor& x) { return avg_pool2d(x, pool(3, 2, 1, include)); },
                       random_input({2, 3, 7, 9}, generator));
        check_gradient([=](const Tensor& x) { return avg_pool2d(x, pool(2, 1, 1, include)); },
                       random_input({1, 2, 5, 6}, generator));
        check_gradient([=](const Tensor& x) { return avg_pool2d(x, pool(4, 4, 0, include)); },
                       random_input({2, 2, 4, 4}, generator));
    }
}

TEST_CASE("adaptive_avg_pool2d forward uses PyTorch's windows", "[pooling]") {
    // H = 7 -> 3: rows [0, 3), [2, 5), [4, 7). Values 0..6 -> means 1, 3, 5.
    Tensor column = Tensor::from_vector(std::vector<double>{0, 1, 2, 3, 4, 5, 6}, {1, 1, 7, 1});
    CHECK(adaptive_avg_pool2d(column, 3, 1).to_double_vector() == std::vector<double>{1, 3, 5});
    // W = 5 -> 2: columns [0, 3), [2, 5). Values 1..5 -> 2, 4.
    Tensor row = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5}, {1, 1, 1, 5});
    CHECK(adaptive_avg_pool2d(row, 1, 2).to_double_vector() == std::vector<double>{2, 4});
    // Output larger than input: 2 -> 3 gives windows [0, 1), [0, 2), [1, 2).
    Tensor pair = Tensor::from_vector(std::vector<double>{2, 4}, {1, 1, 1, 2});
    CHECK(adaptive_avg_pool2d(pair, 1, 3).to_double_vector() == std::vector<double>{2, 3, 4});
}

TEST_CASE("adaptive_avg_pool2d and global_avg_pool2d gradients match finite differences", "[pooling][gradcheck]") {
    Generator generator(3);
    check_gradient([](const Tensor& x) { return adaptive_avg_pool2d(x, 3, 2); }, random_input({2, 3, 7, 5}, generator));
    check_gradient([](const Tensor& x) { return adaptive_avg_pool2d(x, 1, 1); }, random_input({2, 3, 4, 3}, generator));
    check_gradient([](const Tensor& x) { return adaptive_avg_pool2d(x, 5, 4); }, random_input({1, 2, 3, 4}, generator));
    check_gradient([](const Tensor& x) { return global_avg_pool2d(x); }, random_input({2, 5, 3, 7}, generator));
    check_gradient([](const Tensor& x) { return global_avg_pool2d(x); }, random_input({1, 3, 1, 1}, generator));
}

TEST_CASE("global_avg_pool2d is the plane mean, accurate in float32", "[pooling]") {
    Generator generator(4);
    Tensor x = randn({2, 3, 5, 9}, DType::Float64, generator);
    Tensor y = global_avg_pool2d(x);
    CHECK(y.shape() == Shape{2, 3, 1, 1});
    require_close(y, adaptive_avg_pool2d(x, 1, 1), 1e-14, 1e-14);
    // 65536 values near 1e4: a float accumulator would be off by several units.
    Tensor big = Tensor::empty({1, 1, 256, 256}, DType::Float64);
    uniform_(big, 1e4 - 1.0, 1e4 + 1.0, generator);
    Tensor big_float = big.to(DType::Float32);
    std::vector<double> values = big_float.to_double_vector();
    double total = 0.0;
    for (double value : values) total += value;
    CHECK(std::abs(global_avg_pool2d(big_float).item() - total / 65536.0) < 1e-3);
}

TEST_CASE("pooling kernels agree with plain loops in float32 and float64", "[pooling]") {
    // (4, 32, 16, 16) and (2, 64, 12, 10) run several parallel chunks.
    const std::vector<Shape> shapes = {{2, 3, 7, 9}, {1, 1, 1, 1}, {3, 5, 8, 8}, {4, 32, 16, 16}, {2, 64, 12, 10}};
    for (const Shape& shape : shapes) {
        const std::vector<Pool2dOptions> options = {pool(1, 1, 0), pool(3, 2, 1), pool(2, 2, 0), pool(3, 1, 1, false),
                                                    pool(3, 3, 1, true)};
        for (const Pool2dOptions& option : options) {
            if (shape[2] + 2 * option.padding_h < option.kernel_h) continue;
            compare_with_reference(Kind::Max, shape, option, 0, 0);
            compare_with_reference(Kind::Avg, shape, option, 0, 0);
        }
        compare_with_reference(Kind::Adaptive, shape, {}, 3, 2);
        compare_with_reference(Kind::Adaptive, shape, {}, 5, 7);
        compare_with_reference(Kind::Global, shape, {}, 1, 1);
    }
}

TEST_CASE("pooling handles a non-contiguous input", "[pooling]") {
    Generator generator(6);
    Tensor base = distinct_input({2, 3, 9, 7}, generator).detach();
    Tensor x = base.transpose(2, 3);
    REQUIRE_FALSE(x.is_contiguous());
    require_close(max_pool2d(x, pool(3, 2, 1)), max_pool2d(x.contiguous(), pool(3, 2, 1)), 0, 0);
    require_close(avg_pool2d(x, pool(3, 2, 1)), avg_pool2d(x.contiguous(), pool(3, 2, 1)), 0, 0);
    require_close(adaptive_avg_pool2d(x, 2, 3), adaptive_avg_pool2d(x.contiguous(), 2, 3), 0, 0);
    require_close(global_avg_pool2d(x), global_avg_pool2d(x.contiguous()), 0, 0);
}

TEST_CASE("pooling rejects bad input with a message naming the op and the shape", "[pooling][errors]") {
    Tensor x = Tensor::zeros({2, 3, 5, 5});
    for (const char* op : {"max_pool2d", "avg_pool2d"}) {
        INFO(op);
        const std::string name = op;
        auto run = [&](const Tensor& input, const Pool2dOptions& options) {
            return name == "max_pool2d" ? max_pool2d(input, options) : avg_pool2d(input, options);
        };
        require_error([&] { run(Tensor::zeros({3, 5, 5}), pool(2, 2, 0)); }, {op, "[3, 5, 5]", "4 dimensions"});
        require_error([&] { run(x, pool(3, 2, 2)); }, {op, "at most half", "padding 2x2", "kernel 3x3", "[2, 3, 5, 5]"});
        Pool2dOptions tall_padding = pool(3, 2, 0), wide_padding = pool(3, 2, 0);
        tall_padding.padding_h = 2;
        wide_padding.padding_w = 2;
        require_error([&] { run(x, tall_padding); }, {op, "at most half", "padding 2x0"});
        require_error([&] { run(x, wide_padding); }, {op, "at most half", "padding 0x2"});
        require_error([&] { run(x, pool(3, 2, -1)); }, {op, "non-negative", "-1", "[2, 3, 5, 5]"});
        require_error([&] { run(x, pool(8, 1, 1)); }, {op, "larger than the padded input", "8x8", "[2, 3, 5, 5]"});
        require_error([&] { run(x, pool(2, 0, 0)); }, {op, "stride", "0x0", "[2, 3, 5, 5]"});
        require_error([&] { run(x, pool(0, 1, 0)); }, {op, "kernel size", "0x0"});
        require_error([&] { run(Tensor::zeros({2, 0, 5, 5}), pool(2, 2, 0)); }, {op, "empty", "[2, 0, 5, 5]"});
        require_error([&] { run(Tensor::zeros({2, 3, 5, 5}, DType::Int64), pool(2, 2, 0)); },
                      {op, "int64", "[2, 3, 5, 5]"});
        // Kernel exactly as large as the padded input is fine: one output.
        CHECK(run(x, pool(5, 1, 0)).shape() == Shape{2, 3, 1, 1});
    }
    require_error([&] { adaptive_avg_pool2d(x, 0, 2); }, {"adaptive_avg_pool2d", "0x2", "[2, 3, 5, 5]"});
    require_error([&] { adaptive_avg_pool2d(Tensor::zeros({5, 5}), 1, 1); }, {"adaptive_avg_pool2d", "[5, 5]"});
    require_error([&] { adaptive_avg_pool2d(Tensor::zeros({1, 2, 5, 5}, DType::Int64), 1, 1); },
                  {"adaptive_avg_pool2d", "int64"});
    require_error([&] { global_avg_pool2d(Tensor::zeros({2, 3, 5})); }, {"global_avg_pool2d", "[2, 3, 5]"});
    require_error([&] { global_avg_pool2d(Tensor::zeros({2, 3, 0, 5})); }, {"global_avg_pool2d", "empty"});
    require_error([&] { global_avg_pool2d(Tensor::zeros({2, 3, 5, 5}, DType::Int64)); }, {"global_avg_pool2d", "int64"});
}
