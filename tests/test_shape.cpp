// Tests for src/ops/shape.cpp: differentiable reshape, flatten, transpose and slice.
//
// What is checked: forward values and that the outputs share storage with the input (views),
// finite-difference gradients in float64 on odd shapes and every dimension, gradient flow
// through chains of shape ops, accumulation when a slice (or two overlapping slices) is used
// more than once, and bad inputs naming the op and the shape.
#include <functional>
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

Tensor counting(const Shape& shape) {
    std::vector<double> values(static_cast<std::size_t>(shape_numel(shape)));
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i);
    return Tensor::from_vector(values, shape);
}

bool shares_storage(const Tensor& a, const Tensor& b) { return a.impl().storage == b.impl().storage; }

}  // namespace

TEST_CASE("reshape and flatten: values, views and inferred sizes", "[shape]") {
    Tensor x = counting({2, 3, 4});
    Tensor y = reshape(x, {4, -1});
    CHECK(y.shape() == Shape{4, 6});
    CHECK(shares_storage(x, y));
    CHECK(y.to_double_vector() == x.to_double_vector());
    CHECK(reshape(x, {24}).shape() == Shape{24});
    CHECK(reshape(x, {2, 3, 4}).shape() == Shape{2, 3, 4});

    Tensor image = counting({2, 3, 4, 5});
    CHECK(flatten(image).shape() == Shape{2, 60});
    CHECK(flatten(image, 0).shape() == Shape{120});
    CHECK(flatten(image, 2).shape() == Shape{2, 3, 20});
    CHECK(flatten(image, -1).shape() == Shape{2, 3, 4, 5});
    CHECK(shares_storage(flatten(image), image));
    CHECK(flatten(Tensor::scalar(3.0), 0).shape() == Shape{1});  // start_dim 1 is an error, as in PyTorch

    // A non-contiguous input is copied (as Tensor::reshape does), in logical order.
    Tensor transposed = counting({2, 3}).transpose(0, 1);
    CHECK(reshape(transposed, {6}).to_double_vector() == std::vector<double>{0, 3, 1, 4, 2, 5});
    CHECK(flatten(transposed, 0).to_double_vector() == std::vector<double>{0, 3, 1, 4, 2, 5});

    // Empty tensors and int64 tensors are fine: views need no arithmetic.
    CHECK(reshape(Tensor::empty({0, 3}), {3, 0}).shape() == Shape{3, 0});
    Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{1, 2, 3, 4}, {2, 2});
    CHECK(reshape(labels, {4}).to_int64_vector() == std::vector<std::int64_t>{1, 2, 3, 4});
}

TEST_CASE("transpose and slice: values and views", "[shape]") {
    Tensor x = counting({2, 3});
    Tensor t = transpose(x, 0, 1);
    CHECK(t.shape() == Shape{3, 2});
    CHECK(shares_storage(x, t));
    CHECK(t.to_double_vector() == std::vector<double>{0, 3, 1, 4, 2, 5});
    CHECK(transpose(x, -1, 0).to_double_vector() == t.to_double_vector());

    Tensor s = slice(x, 1, 1, 3);
    CHECK(s.shape() == Shape{2, 2});
    CHECK(shares_storage(x, s));
    CHECK(s.to_double_vector() == std::vector<double>{1, 2, 4, 5});
    CHECK(slice(x, 0, 1, 2).to_double_vector() == std::vector<double>{3, 4, 5});
    CHECK(slice(x, -1, 2, 3).to_double_vector() == std::vector<double>{2, 5});
    CHECK(slice(x, 1, 2, 2).numel() == 0);
    // Writing through the view changes the base, as in PyTorch.
    s.fill_(-1.0);
    CHECK(x.to_double_vector() == std::vector<double>{0, -1, -1, 3, -1, -1});
}

TEST_CASE("gradients of reshape and flatten", "[shape][gradcheck]") {
    Generator generator(1);
    Tensor x = testing::random_input({2, 3, 5}, generator);
    require_gradcheck([](const std::vector<Tensor>& in) { return reshape(in[0], {5, -1}); }, {x});
    require_gradcheck([](const std::vector<Tensor>& in) { return reshape(in[0], {30}) * reshape(in[0], {30}); }, {x});
    Tensor image = testing::random_input({1, 3, 3, 5}, generator);
    for (std::int64_t start = 0; start < 4; ++start) {
        INFO("start_dim " << start);
        require_gradcheck([start](const std::vector<Tensor>& in) { return flatten(in[0], start); }, {image});
    }
}

TEST_CASE("gradients of transpose", "[shape][gradcheck]") {
    Generator generator(2);
    Tensor x = testing::random_input({2, 3, 5}, generator);
    for (std::int64_t a = 0; a < 3; ++a) {
        for (std::int64_t b = 0; b < 3; ++b) {
            INFO("transpose " << a << ", " << b);
            require_gradcheck([a, b](const std::vector<Tensor>& in) { return transpose(in[0], a, b); }, {x});
        }
    }
    // Through an op that makes the transposed view contiguous and multiplies it with itself.
    Tensor square = testing::random_input({3, 3}, generator);
    require_gradcheck([](const std::vector<Tensor>& in) { return mul(transpose(in[0], 0, 1), in[0]); }, {square});
}

TEST_CASE("gradients of slice on every dimension", "[shape][gradcheck]") {
    Generator generator(3);
    Tensor x = testing::random_input({3, 5, 7}, generator);
    const std::vector<std::vector<std::int64_t>> ranges = {{0, 1}, {1, 3}, {0, 3}, {2, 3}};
    for (std::int64_t d = 0; d < 3; ++d) {
        for (const auto& range : ranges) {
            INFO("slice dimension " << d << " [" << range[0] << ", " << range[1] << ")");
            require_gradcheck(
                [d, range](const std::vector<Tensor>& in) { return slice(in[0], d, range[0], range[1]); }, {x});
        }
    }
    Tensor batch_one = testing::random_input({1, 9}, generator);
    require_gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], 1, 4, 9); }, {batch_one});
}

TEST_CASE("a slice used twice, and overlapping slices, accumulate their gradients", "[shape]") {
    Tensor x = Tensor::ones({2, 4}, DType::Float64).set_requires_grad(true);
    Tensor middle = slice(x, 1, 1, 3);
    sum(middle + middle).backward();
    testing::require_close(x.grad(), Tensor::from_vector(std::vector<double>{0, 2, 2, 0, 0, 2, 2, 0}, {2, 4}), 0, 0);

    x.zero_grad();
    Tensor left = slice(x, 1, 0, 3), right = slice(x, 1, 1, 4);
    sum(left * 3.0 + right).backward();
    testing::require_close(x.grad(), Tensor::from_vector(std::vector<double>{3, 4, 4, 1, 3, 4, 4, 1}, {2, 4}), 0, 0);

    // The slice gradient of a float32 tensor, along dimension 0 (one contiguous block).
    Tensor y = Tensor::ones({3, 2}, DType::Float32).set_requires_grad(true);
    slice(y, 0, 2, 3).backward(Tensor::from_vector(std::vector<float>{5, 6}, {1, 2}));
    testing::require_close(y.grad(), Tensor::from_vector(std::vector<float>{0, 0, 0, 0, 5, 6}, {3, 2}), 0, 0);
}

TEST_CASE("gradients flow through chains of shape ops", "[shape][gradcheck]") {
    Generator generator(4);
    Tensor x = testing::random_input({2, 3, 4}, generator);
    require_gradcheck(
        [](const std::vector<Tensor>& in) {
            Tensor t = transpose(reshape(in[0], {6, 4}), 0, 1);  // (4, 6), not contiguous
            Tensor s = slice(t, 1, 1, 5);                        // (4, 4)
            return flatten(s * s, 0);
        },
        {x});
    // The large gradient path of slice (many blocks go through the thread pool).
    Tensor big = Tensor::ones({3000, 50}, DType::Float32).set_requires_grad(true);
    sum(slice(big, 1, 10, 40)).backward();
    std::vector<float> gradient = big.grad().to_float_vector();
    double total = 0.0;
    for (float value : gradient) total += value;
    CHECK(total == 3000.0 * 30.0);
    CHECK(big.grad().at({2999, 39}) == 1.0);
    CHECK(big.grad().at({2999, 40}) == 0.0);
    CHECK(big.grad().at({0, 9}) == 0.0);
}

TEST_CASE("shape op bad inputs name the op and the shape", "[shape][errors]") {
    Tensor x = Tensor::ones({2, 3});
    require_error([&] { reshape(x, {4, 2}); }, {"reshape", "[4, 2]", "[2, 3]"});
    require_error([&] { reshape(x, {-1, -1}); }, {"reshape", "-1", "[2, 3]"});
    require_error([&] { reshape(x, {-2, 3}); }, {"reshape", "-2", "[2, 3]"});
    require_error([&] { reshape(x, {4, -1}); }, {"reshape", "[4, -1]", "[2, 3]"});
    require_error([&] { flatten(x, 2); }, {"flatten", "2", "[2, 3]"});
    require_error([&] { flatten(x, -3); }, {"flatten", "-3", "[2, 3]"});
    require_error([&] { flatten(Tensor::scalar(1.0), 1); }, {"flatten", "1", "[]"});
    require_error([&] { transpose(x, 0, 2); }, {"transpose", "dimension 2", "[2, 3]"});
    require_error([&] { transpose(x, -3, 0); }, {"transpose", "dimension -3", "[2, 3]"});
    require_error([&] { slice(x, 2, 0, 1); }, {"slice", "dimension 2", "[2, 3]"});
    require_error([&] { slice(x, 1, 2, 1); }, {"slice", "[2, 1)", "[2, 3]"});
    require_error([&] { slice(x, 1, 0, 4); }, {"slice", "[0, 4)", "[2, 3]"});
    require_error([&] { slice(x, 0, -1, 1); }, {"slice", "[-1, 1)", "[2, 3]"});
    require_error([&] { reshape(Tensor(), {1}); }, {"reshape", "undefined"});
    require_error([&] { slice(Tensor(), 0, 0, 1); }, {"slice", "undefined"});
}
