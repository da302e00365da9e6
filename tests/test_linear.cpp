// linear and matmul: forward values by hand, finite-difference gradients of every input, the
// GEMM-based results against plain loops in float32 and float64, strided inputs, and the error
// messages for bad inputs.
#include <cmath>
#include <string>
#include <vector>

#include <cudagrad/cudagrad.hpp>

#include "catch.hpp"
#include "test_support.hpp"
#include "compare.hpp"
#include "gradcheck.hpp"

using namespace cudagrad;
using cudagrad::testing::require_error;
using testing::require_close;

namespace {

Tensor random_tensor(const Shape& shape, DType dtype, Generator& generator) {
    Tensor tensor = Tensor::empty(shape, dtype);
    uniform_(tensor, -1.0, 1.0, generator);
    return tensor;
}

// y[i, j] = sum over k of x[i, k] * weight[j, k] + bias[j], in double whatever the dtype.
Tensor linear_by_loops(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    const std::int64_t rows = x.size(0), in = x.size(1), out = weight.size(0);
    const std::vector<double> xs = x.to_double_vector(), ws = weight.to_double_vector();
    const std::vector<double> bs = bias.defined() ? bias.to_double_vector() : std::vector<double>(out, 0.0);
    std::vector<double> y(static_cast<std::size_t>(rows * out));
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t j = 0; j < out; ++j) {
            double total = bs[j];
            for (std::int64_t k = 0; k < in; ++k) total += xs[i * in + k] * ws[j * in + k];
            y[i * out + j] = total;
        }
    return Tensor::from_vector(y, {rows, out}).to(x.dtype());
}

void gradcheck_linear(std::int64_t rows, std::int64_t in, std::int64_t out, bool with_bias) {
    INFO("linear " << rows << "x" << in << " -> " << out << (with_bias ? " with bias" : " without bias"));
    Generator generator(11);
    Tensor x = testing::random_input({rows, in}, generator);
    Tensor weight = testing::random_input({out, in}, generator);
    Tensor bias = with_bias ? testing::random_input({out}, generator) : Tensor();
    auto function = [](const std::vector<Tensor>& inputs) { return linear(inputs[0], inputs[1], inputs[2]); };
    testing::GradcheckResult result = testing::gradcheck(function, {x, weight, bias});
    INFO(result.report);
    CHECK(result.passed);
    CHECK(result.checked == x.numel() + weight.numel() + (with_bias ? out : 0));
}

void gradcheck_matmul(std::int64_t m, std::int64_t k, std::int64_t n) {
    INFO("matmul " << m << "x" << k << " times " << k << "x" << n);
    Generator generator(13);
    Tensor a = testing::random_input({m, k}, generator);
    Tensor b = testing::random_input({k, n}, generator);
    auto function = [](const std::vector<Tensor>& inputs) { return matmul(inputs[0], inputs[1]); };
    testing::GradcheckResult result = testing::gradcheck(function, {a, b});
    INFO(result.report);
    CHECK(result.passed);
    CHECK(result.checked == a.numel() + b.numel());
}

}  // namespace

TEST_CASE("linear and matmul match hand-computed values") {
    // x = [[1, 2], [3, 4]], weight = [[1, 0], [1, 1], [0, -1]], bias = [10, 20, 30]
    Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
    Tensor weight = Tensor::from_vector(std::vector<float>{1, 0, 1, 1, 0, -1}, {3, 2});
    Tensor bias = Tensor::from_vector(std::vector<float>{10, 20, 30}, {3});
    Tensor y = linear(x, weight, bias);
    CHECK(y.shape() == Shape{2, 3});
    CHECK(y.to_double_vector() == std::vector<double>{11, 23, 28, 13, 27, 26});
    CHECK(linear(x, weight, Tensor()).to_double_vector() == std::vector<double>{1, 3, -2, 3, 7, -4});
    // [[1, 2], [3, 4]] @ [[1, 0, 2], [0, 1, 3]] = [[1, 2, 8], [3, 4, 18]]
    Tensor b = Tensor::from_vector(std::vector<float>{1, 0, 2, 0, 1, 3}, {2, 3});
    Tensor c = matmul(x, b);
    CHECK(c.shape() == Shape{2, 3});
    CHECK(c.to_double_vector() == std::vector<double>{1, 2, 8, 3, 4, 18});
}

TEST_CASE("linear gradients match finite differences") {
    gradcheck_linear(3, 5, 7, true);
    gradcheck_linear(1, 4, 3, true);   // batch 1
    gradcheck_linear(4, 9, 1, true);   // one output
    gradcheck_linear(5, 3, 6, false);  // no bias
    gradcheck_linear(2, 17, 10, true);
}

TEST_CASE("matmul gradients match finite differences") {
    gradcheck_matmul(4, 3, 5);
    gradcheck_matmul(1, 6, 1);
    gradcheck_matmul(7, 1, 3);
    gradcheck_matmul(9, 8, 2);
}

TEST_CASE("linear gradients by hand: dbias sums rows, dx = dy weight, dweight = dy^T x") {
    Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2});
    Tensor weight = Tensor::from_vector(std::vector<double>{1, 0, 1, 1, 0, -1}, {3, 2});
    Tensor bias = Tensor::from_vector(std::vector<double>{0, 0, 0}, {3});
    for (Tensor* t : {&x, &weight, &bias}) t->set_requires_grad(true);
    Tensor y = linear(x, weight, bias);
    y.backward(Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}));
    CHECK(bias.grad().to_double_vector() == std::vector<double>{5, 7, 9});
    // dx = [[1,2,3],[4,5,6]] @ [[1,0],[1,1],[0,-1]] = [[3, -1], [9, -1]]
    CHECK(x.grad().to_double_vector() == std::vector<double>{3, -1, 9, -1});
    // dweight = [[1,4],[2,5],[3,6]] @ [[1,2],[3,4]] = [[13,18],[17,24],[21,30]]
    CHECK(weight.grad().to_double_vector() == std::vector<double>{13, 18, 17, 24, 21, 30});
}

TEST_CASE("linear and matmul agree with plain loops on larger shapes") {
    Generator generator(17);
    struct Sizes {
        std::int64_t rows, in, out;
    };
    for (const Sizes& s : {Sizes{33, 65, 17}, Sizes{32, 2048, 100}, Sizes{1, 300, 129}, Sizes{70, 5, 3}}) {
        for (DType dtype : {DType::Float32, DType::Float64}) {
            INFO("rows " << s.rows << ", in " << s.in << ", out " << s.out << ", " << dtype_name(dtype));
            const double tolerance = dtype == DType::Float32 ? 1e-4 : 1e-10;
            Tensor x = random_tensor({s.rows, s.in}, dtype, generator);
            Tensor weight = random_tensor({s.out, s.in}, dtype, generator);
            Tensor bias = random_tensor({s.out}, dtype, generator);
            require_close(linear(x, weight, bias), linear_by_loops(x, weight, bias), tolerance, tolerance);
            require_close(linear(x, weight, Tensor()), linear_by_loops(x, weight, Tensor()), tolerance, tolerance);
            // matmul(x, weight^T) is the same product with the transpose read through strides.
            require_close(matmul(x, weight.transpose(0, 1)), linear_by_loops(x, weight, Tensor()), tolerance,
                          tolerance);
        }
    }
}

TEST_CASE("linear: gradients only where required, strided inputs accepted") {
    Generator generator(19);
    Tensor x = testing::random_input({4, 6}, generator);
    Tensor weight = random_tensor({5, 6}, DType::Float64, generator);
    Tensor y = linear(x, weight, Tensor());
    y.backward(Tensor::ones(y.shape(), DType::Float64));
    CHECK(x.grad().defined());
    CHECK_FALSE(weight.grad().defined());
    // Every row of dx is the column sums of the weight.
    std::vector<double> expected(6, 0.0);
    for (std::int64_t j = 0; j < 5; ++j)
        for (std::int64_t k = 0; k < 6; ++k) expected[k] += weight.at({j, k});
    std::vector<double> dx = x.grad().to_double_vector();
    for (std::int64_t k = 0; k < 6; ++k) CHECK(std::abs(dx[18 + k] - expected[k]) < 1e-12);

    Tensor transposed = random_tensor({6, 4}, DType::Float64, generator).transpose(0, 1);
    REQUIRE_FALSE(transposed.is_contiguous());
    require_close(linear(transposed, weight, Tensor()), linear(transposed.contiguous(), weight, Tensor()), 0.0, 0.0);
}

TEST_CASE("linear and matmul reject bad inputs with messages naming the op and the shapes") {
    const Tensor x = Tensor::zeros({4, 6});
    const Tensor weight = Tensor::zeros({5, 6});
    SECTION("input not 2-D") {
        require_error([&] { linear(Tensor::zeros({4, 6, 1}), weight, Tensor()); }, {"linear", "[4, 6, 1]"});
        require_error([&] { matmul(Tensor::zeros({6}), weight); }, {"matmul", "[6]"});
    }
    SECTION("feature mismatch") {
        require_error([&] { linear(x, Tensor::zeros({5, 7}), Tensor()); },
                      {"linear", "6 features", "[4, 6]", "[5, 7]"});
        require_error([&] { matmul(x, Tensor::zeros({5, 3})); }, {"matmul", "[4, 6]", "[5, 3]"});
    }
    SECTION("bias of the wrong shape") {
        require_error([&] { linear(x, weight, Tensor::zeros({6})); }, {"linear", "bias", "[5]", "[6]"});
        require_error([&] { linear(x, weight, Tensor::zeros({1, 5})); }, {"linear", "bias", "[1, 5]"});
    }
    SECTION("int64 input") {
        require_error([&] { linear(Tensor::zeros({4, 6}, DType::Int64), weight, Tensor()); },
                      {"linear", "int64", "[4, 6]"});
        require_error([&] { matmul(x, Tensor::zeros({6, 2}, DType::Int64)); }, {"matmul", "int64", "[6, 2]"});
    }
    SECTION("dtypes differ") {
        require_error([&] { linear(x, Tensor::zeros({5, 6}, DType::Float64), Tensor()); },
                      {"linear", "float64", "[5, 6]"});
        require_error([&] { matmul(x, Tensor::zeros({6, 2}, DType::Float64)); }, {"matmul", "float64"});
    }
    SECTION("empty input") {
        require_error([&] { linear(Tensor::zeros({0, 6}), weight, Tensor()); }, {"linear", "empty", "[0, 6]"});
        require_error([&] { matmul(x, Tensor::zeros({6, 0})); }, {"matmul", "empty", "[6, 0]"});
    }
    SECTION("undefined input") {
        require_error([&] { linear(Tensor(), weight, Tensor()); }, {"linear", "undefined"});
    }
}
