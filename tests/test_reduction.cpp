// Tests for src/ops/reduction.cpp and src/cpu/reduction.cpp: sum, mean, sum over a dimension
// (with and without keep_dimension) and argmax.
//
// What is checked: hand-computed values; the kernels (row path, column-tile path, thread-pool
// path) against a plain double loop in float32 and float64; float32 sums of a million elements
// accurate to 1e-6 relative; finite-difference gradients in float64 on odd shapes over every
// dimension; argmax's tie and NaN rules; and bad inputs naming the op and the shape.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "catch.hpp"
#include "test_support.hpp"
#include "compare.hpp"
#include "gradcheck.hpp"

using namespace cudagrad;
using cudagrad::testing::require_error;
using cudagrad::testing::require_gradcheck;

namespace {

// Plain-loop sum over `dimension` of a contiguous tensor, in double, shaped with keepdim.
std::vector<double> reference_sum(const Tensor& x, std::size_t dimension) {
    const Shape& shape = x.shape();
    std::int64_t outer = 1, inner = 1;
    for (std::size_t d = 0; d < dimension; ++d) outer *= shape[d];
    for (std::size_t d = dimension + 1; d < shape.size(); ++d) inner *= shape[d];
    const std::int64_t extent = shape[dimension];
    std::vector<double> values = x.to_double_vector();
    std::vector<double> result(static_cast<std::size_t>(outer * inner), 0.0);
    for (std::int64_t o = 0; o < outer; ++o)
        for (std::int64_t r = 0; r < extent; ++r)
            for (std::int64_t i = 0; i < inner; ++i)
                result[static_cast<std::size_t>(o * inner + i)] +=
                    values[static_cast<std::size_t>((o * extent + r) * inner + i)];
    return result;
}

std::vector<std::int64_t> reference_argmax(const Tensor& x, std::size_t dimension) {
    const Shape& shape = x.shape();
    std::int64_t outer = 1, inner = 1;
    for (std::size_t d = 0; d < dimension; ++d) outer *= shape[d];
    for (std::size_t d = dimension + 1; d < shape.size(); ++d) inner *= shape[d];
    const std::int64_t extent = shape[dimension];
    std::vector<double> values = x.to_double_vector();
    std::vector<std::int64_t> result;
    for (std::int64_t o = 0; o < outer; ++o) {
        for (std::int64_t i = 0; i < inner; ++i) {
            std::int64_t best = 0;
            for (std::int64_t r = 1; r < extent; ++r) {
                if (values[static_cast<std::size_t>((o * extent + r) * inner + i)] >
                    values[static_cast<std::size_t>((o * extent + best) * inner + i)])
                    best = r;
            }
            result.push_back(best);
        }
    }
    return result;
}

Shape without(Shape shape, std::size_t dimension, bool keep) {
    if (keep) {
        shape[dimension] = 1;
    } else {
        shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(dimension));
    }
    return shape;
}

}  // namespace

TEST_CASE("sum and mean of all elements", "[reduction]") {
    Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor total = sum(x);
    CHECK(total.shape() == Shape{});
    CHECK(total.dtype() == DType::Float32);
    CHECK(total.item() == 21.0);
    CHECK(mean(x).item() == 3.5);
    CHECK(mean(x).shape() == Shape{});
    CHECK(sum(Tensor::full({1}, -2.5, DType::Float64)).item() == -2.5);
}

TEST_CASE("float32 sums of many elements stay accurate", "[reduction]") {
    // 0.1f a million times: a single float accumulator ends at 100958 (1% off); ours is double.
    Tensor x = Tensor::full({1000, 1000}, 0.1, DType::Float32);
    const double expected = 1e6 * static_cast<double>(0.1f);
    CHECK(std::abs(sum(x).item() - expected) <= 1e-6 * expected);
    CHECK(std::abs(mean(x).item() - static_cast<double>(0.1f)) <= 1e-6 * 0.1);
    Tensor rows = sum(x, 1);
    for (double value : rows.to_double_vector()) CHECK(std::abs(value - 1000 * static_cast<double>(0.1f)) < 1e-3);
    // A parallel-sized random tensor against the plain loop.
    Generator generator(2);
    Tensor y = Tensor::empty({3, 70001}, DType::Float32);
    uniform_(y, -1.0, 1.0, generator);
    double reference = 0.0;
    for (double value : y.to_double_vector()) reference += value;
    CHECK(std::abs(sum(y).item() - reference) <= 1e-3);
}

TEST_CASE("sum over a dimension: hand-computed values and keep_dimension", "[reduction]") {
    Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
    testing::require_close(sum(x, 0), Tensor::from_vector(std::vector<double>{5, 7, 9}, {3}), 0, 0);
    testing::require_close(sum(x, 1), Tensor::from_vector(std::vector<double>{6, 15}, {2}), 0, 0);
    testing::require_close(sum(x, -1), Tensor::from_vector(std::vector<double>{6, 15}, {2}), 0, 0);
    testing::require_close(sum(x, 0, true), Tensor::from_vector(std::vector<double>{5, 7, 9}, {1, 3}), 0, 0);
    testing::require_close(sum(x, 1, true), Tensor::from_vector(std::vector<double>{6, 15}, {2, 1}), 0, 0);
    testing::require_close(sum(Tensor::ones({4}, DType::Float64), 0), Tensor::full({}, 4.0, DType::Float64), 0, 0);
}

TEST_CASE("sum over a dimension matches a plain loop on every path", "[reduction]") {
    Generator generator(4);
    // (7, 13, 5): small; (2, 3, 1030): inner spans three column tiles of 512;
    // (4, 40000) over dim 1 and (40000, 3) over dim 0: large enough for the thread pool.
    const std::vector<Shape> shapes = {{7, 13, 5}, {2, 3, 1030}, {4, 40000}, {40000, 3}, {1, 1, 1}};
    for (DType dtype : {DType::Float32, DType::Float64}) {
        for (const Shape& shape : shapes) {
            Tensor x = Tensor::empty(shape, dtype);
            uniform_(x, -1.0, 1.0, generator);
            for (std::size_t d = 0; d < shape.size(); ++d) {
                for (bool keep : {false, true}) {
                    INFO(shape_string(shape) << " " << dtype_name(dtype) << " dimension " << d << " keep " << keep);
                    Tensor result = sum(x, static_cast<std::int64_t>(d), keep);
                    REQUIRE(result.dtype() == dtype);
                    Tensor expected = Tensor::from_vector(reference_sum(x, d), without(shape, d, keep));
                    // float32: the result is the double sum rounded once.
                    testing::require_close(result, expected, dtype == DType::Float32 ? 1e-6 : 1e-12, 1e-12);
                }
            }
        }
    }
}

TEST_CASE("reductions accept non-contiguous views", "[reduction]") {
    Generator generator(8);
    Tensor base = Tensor::empty({5, 4}, DType::Float64);
    uniform_(base, -1.0, 1.0, generator);
    Tensor x = base.transpose(0, 1);
    testing::require_close(sum(x, 1), sum(x.contiguous(), 1), 0, 1e-15);
    testing::require_close(sum(x), sum(base), 0, 1e-14);
    CHECK(argmax(x, 0).to_int64_vector() == argmax(base, 1).to_int64_vector());
}

TEST_CASE("gradients of sum, mean and sum over a dimension", "[reduction][gradcheck]") {
    Generator generator(6);
    for (const Shape& shape : std::vector<Shape>{{1}, {7}, {3, 5}, {1, 9}, {2, 3, 5}, {3, 1, 4, 2}}) {
        INFO("shape " << shape_string(shape));
        Tensor x = testing::random_input(shape, generator);
        require_gradcheck([](const std::vector<Tensor>& in) { return sum(in[0]); }, {x});
        require_gradcheck([](const std::vector<Tensor>& in) { return mean(in[0]); }, {x});
        require_gradcheck([](const std::vector<Tensor>& in) { return mean(in[0] * in[0]); }, {x});
        for (std::int64_t d = -1; d < static_cast<std::int64_t>(shape.size()); ++d) {
            for (bool keep : {false, true}) {
                INFO("dimension " << d << " keep " << keep);
                require_gradcheck([d, keep](const std::vector<Tensor>& in) { return sum(in[0], d, keep); }, {x});
            }
        }
    }
}

TEST_CASE("mean's gradient is 1/numel", "[reduction]") {
    Tensor x = Tensor::ones({2, 5}, DType::Float64).set_requires_grad(true);
    mean(x).backward();
    testing::require_close(x.grad(), Tensor::full({2, 5}, 0.1, DType::Float64), 0, 1e-16);
    Tensor y = Tensor::ones({2, 3}, DType::Float32).set_requires_grad(true);
    sum(y, 0).backward(Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}));
    testing::require_close(y.grad(), Tensor::from_vector(std::vector<float>{1, 2, 3, 1, 2, 3}, {2, 3}), 0, 0);
}

TEST_CASE("argmax values, ties and NaN", "[reduction]") {
    Tensor x = Tensor::from_vector(std::vector<float>{1, 5, 5, 2, 0, 3, 9, 3, -1, -1, -1, -2}, {3, 4});
    Tensor rows = argmax(x, 1);
    CHECK(rows.dtype() == DType::Int64);
    CHECK(rows.shape() == Shape{3});
    CHECK(rows.to_int64_vector() == std::vector<std::int64_t>{1, 2, 0});  // ties: the first index
    CHECK(argmax(x, 0).to_int64_vector() == std::vector<std::int64_t>{0, 0, 1, 1});
    CHECK(argmax(x, -1).to_int64_vector() == std::vector<std::int64_t>{1, 2, 0});

    const float nan = std::numeric_limits<float>::quiet_NaN();
    Tensor with_nan = Tensor::from_vector(std::vector<float>{1, nan, 7, nan}, {1, 4});
    CHECK(argmax(with_nan, 1).to_int64_vector() == std::vector<std::int64_t>{1});  // NaN is the maximum

    Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{3, -1, 8, 8}, {2, 2});
    CHECK(argmax(labels, 1).to_int64_vector() == std::vector<std::int64_t>{0, 0});
    CHECK(argmax(labels, 0).to_int64_vector() == std::vector<std::int64_t>{1, 1});

    Tensor needs_grad = Tensor::ones({2, 2}, DType::Float64).set_requires_grad(true);
    CHECK_FALSE(argmax(needs_grad, 0).requires_grad());
}

TEST_CASE("argmax matches a plain loop on 3-d shapes and large rows", "[reduction]") {
    Generator generator(12);
    for (DType dtype : {DType::Float32, DType::Float64}) {
        for (const Shape& shape : std::vector<Shape>{{2, 7, 5}, {3, 1, 4}, {5000, 11}, {9, 20000}}) {
            Tensor x = Tensor::empty(shape, dtype);
            uniform_(x, -1.0, 1.0, generator);
            for (std::size_t d = 0; d < shape.size(); ++d) {
                INFO(shape_string(shape) << " " << dtype_name(dtype) << " dimension " << d);
                Tensor result = argmax(x, static_cast<std::int64_t>(d));
                REQUIRE(result.shape() == without(shape, d, false));
                CHECK(result.to_int64_vector() == reference_argmax(x, d));
            }
        }
    }
}

TEST_CASE("reduction bad inputs name the op and the shape", "[reduction][errors]") {
    Tensor labels = Tensor::zeros({2, 3}, DType::Int64);
    require_error([&] { sum(labels); }, {"sum", "int64", "[2, 3]"});
    require_error([&] { mean(labels); }, {"mean", "int64", "[2, 3]"});
    require_error([&] { sum(labels, 0); }, {"sum", "int64", "[2, 3]"});

    Tensor empty = Tensor::empty({2, 0});
    require_error([&] { sum(empty); }, {"sum", "empty", "[2, 0]"});
    require_error([&] { mean(empty); }, {"mean", "empty", "[2, 0]"});
    require_error([&] { sum(empty, 1); }, {"sum", "empty", "[2, 0]"});
    require_error([&] { argmax(empty, 0); }, {"argmax", "empty", "[2, 0]"});

    Tensor x = Tensor::ones({2, 3});
    require_error([&] { sum(x, 2); }, {"sum", "dimension 2", "[2, 3]"});
    require_error([&] { sum(x, -3); }, {"sum", "dimension -3", "[2, 3]"});
    require_error([&] { argmax(x, 5); }, {"argmax", "dimension 5", "[2, 3]"});
    require_error([&] { argmax(Tensor::scalar(1.0), 0); }, {"argmax", "dimension 0", "[]"});
    require_error([&] { sum(Tensor()); }, {"sum", "undefined"});
}
