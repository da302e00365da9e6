// Tests for src/ops/elementwise.cpp, src/ops/activation.cpp and src/cpu/elementwise.cpp:
// add, sub, mul, scale, add_scalar, the operators, and relu.
//
// What is checked: forward values against hand-computed cases; the kernels (serial and
// thread-pool paths) against a plain loop in float32 and float64, bit for bit, since each
// element is one IEEE operation; finite-difference gradients in float64 on odd shapes; relu's
// gradient at exactly 0; and bad inputs (shape mismatch, int64, empty, mixed dtypes), each
// error naming the op and the shapes.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "catch.hpp"
#include "test_support.hpp"
#include "compare.hpp"
#include "cpu/elementwise.hpp"
#include "gradcheck.hpp"

using namespace cudagrad;
using cudagrad::testing::require_error;
using cudagrad::testing::require_gradcheck;

namespace {

// Values in +-[0.1, 1]: far enough from relu's kink at 0 for central differences (eps 1e-6).
Tensor input_away_from_zero(const Shape& shape, Generator& generator) {
    Tensor x = testing::random_input(shape, generator, 0.1, 1.0);
    double* values = x.data<double>();
    for (std::int64_t i = 0; i < x.numel(); ++i) {
        if (generator.uniform() < 0.5) values[i] = -values[i];
    }
    return x;
}

const std::vector<Shape> odd_shapes = {{1}, {7}, {3, 5}, {1, 9}, {2, 3, 5}};

// Sizes that exercise the serial path and the thread-pool path (grain 32768 elements).
const std::vector<Shape> kernel_shapes = {{1}, {13}, {3, 7, 5}, {32768}, {3, 50001}, {257, 1023}};

template <typename T> Tensor random_tensor(const Shape& shape, Generator& generator) {
    Tensor x = Tensor::empty(shape, dtype_of<T>());
    uniform_(x, -2.0, 2.0, generator);
    return x;
}

// Checks the op against a plain loop computing each element in type T, bit for bit.
template <typename T>
void check_against_loop(const std::function<Tensor(const Tensor&, const Tensor&)>& op,
                        const std::function<T(T, T)>& element, Generator& generator) {
    for (const Shape& shape : kernel_shapes) {
        INFO("shape " << shape_string(shape) << ", " << dtype_name(dtype_of<T>()));
        Tensor a = random_tensor<T>(shape, generator);
        Tensor b = random_tensor<T>(shape, generator);
        Tensor result = op(a, b);
        REQUIRE(result.shape() == shape);
        REQUIRE(result.dtype() == dtype_of<T>());
        const T* a_values = a.data<T>();
        const T* b_values = b.data<T>();
        std::vector<T> expected(static_cast<std::size_t>(a.numel()));
        for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = element(a_values[i], b_values[i]);
        testing::require_close(result, Tensor::from_vector(expected, shape), 0.0, 0.0);
    }
}

}  // namespace

TEST_CASE("add, sub, mul, scale and add_scalar forward values", "[elementwise]") {
    Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, -4, 5.5f, 6}, {2, 3});
    Tensor b = Tensor::from_vector(std::vector<float>{0.5f, -1, 2, 2, 0, -3}, {2, 3});
    testing::require_close(add(a, b), Tensor::from_vector(std::vector<float>{1.5f, 1, 5, -2, 5.5f, 3}, {2, 3}), 0, 0);
    testing::require_close(sub(a, b), Tensor::from_vector(std::vector<float>{0.5f, 3, 1, -6, 5.5f, 9}, {2, 3}), 0, 0);
    testing::require_close(mul(a, b), Tensor::from_vector(std::vector<float>{0.5f, -2, 6, -8, 0, -18}, {2, 3}), 0, 0);
    testing::require_close(scale(a, -2.0),
                           Tensor::from_vector(std::vector<float>{-2, -4, -6, 8, -11, -12}, {2, 3}), 0, 0);
    testing::require_close(add_scalar(a, 0.25),
                           Tensor::from_vector(std::vector<float>{1.25f, 2.25f, 3.25f, -3.75f, 5.75f, 6.25f}, {2, 3}),
                           0, 0);
    // The operators are the same ops.
    testing::require_close(a + b, add(a, b), 0, 0);
    testing::require_close(a - b, sub(a, b), 0, 0);
    testing::require_close(a * b, mul(a, b), 0, 0);
    testing::require_close(a * 3.0, scale(a, 3.0), 0, 0);
}

TEST_CASE("binary kernels match a plain loop on serial and parallel sizes", "[elementwise]") {
    Generator generator(7);
    check_against_loop<float>(add, [](float x, float y) { return x + y; }, generator);
    check_against_loop<double>(add, [](double x, double y) { return x + y; }, generator);
    check_against_loop<float>(sub, [](float x, float y) { return x - y; }, generator);
    check_against_loop<double>(sub, [](double x, double y) { return x - y; }, generator);
    check_against_loop<float>(mul, [](float x, float y) { return x * y; }, generator);
    check_against_loop<double>(mul, [](double x, double y) { return x * y; }, generator);
    check_against_loop<float>([](const Tensor& x, const Tensor&) { return scale(x, 0.3); },
                              [](float x, float) { return x * 0.3f; }, generator);
    check_against_loop<double>([](const Tensor& x, const Tensor&) { return add_scalar(x, -1.7); },
                               [](double x, double) { return x + -1.7; }, generator);
    check_against_loop<float>([](const Tensor& x, const Tensor&) { return relu(x); },
                              [](float x, float) { return x < 0 ? 0.0f : x; }, generator);
    check_against_loop<double>([](const Tensor& x, const Tensor&) { return relu(x); },
                               [](double x, double) { return x < 0 ? 0.0 : x; }, generator);
}

TEST_CASE("the kernels work in place", "[elementwise]") {
    std::vector<float> a{1, 2, 3}, b{10, 20, 30};
    cudagrad::cpu::add(a.data(), b.data(), a.data(), 3);
    CHECK(a == std::vector<float>{11, 22, 33});
    cudagrad::cpu::relu_forward(b.data(), b.data(), 3);
    CHECK(b == std::vector<float>{10, 20, 30});
}

TEST_CASE("elementwise ops accept non-contiguous views", "[elementwise]") {
    Generator generator(11);
    Tensor base_a = random_tensor<double>({5, 3}, generator);
    Tensor base_b = random_tensor<double>({3, 5}, generator);
    Tensor a = base_a.transpose(0, 1);  // (3, 5), not contiguous
    REQUIRE_FALSE(a.is_contiguous());
    testing::require_close(add(a, base_b), add(a.contiguous(), base_b), 0, 0);
    testing::require_close(mul(base_b, a), mul(base_b, a.contiguous()), 0, 0);
    testing::require_close(relu(a), relu(a.contiguous()), 0, 0);
    testing::require_close(scale(a, 2.0), scale(a.contiguous(), 2.0), 0, 0);
}

TEST_CASE("gradients of add, sub, mul, scale and add_scalar", "[elementwise][gradcheck]") {
    Generator generator(3);
    for (const Shape& shape : odd_shapes) {
        INFO("shape " << shape_string(shape));
        Tensor a = testing::random_input(shape, generator);
        Tensor b = testing::random_input(shape, generator);
        require_gradcheck([](const std::vector<Tensor>& in) { return add(in[0], in[1]); }, {a, b});
        require_gradcheck([](const std::vector<Tensor>& in) { return sub(in[0], in[1]); }, {a, b});
        require_gradcheck([](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }, {a, b});
        require_gradcheck([](const std::vector<Tensor>& in) { return scale(in[0], -1.5); }, {a});
        require_gradcheck([](const std::vector<Tensor>& in) { return add_scalar(in[0], 4.0); }, {a});
        // A tensor used twice in one op gets both gradients: d(a*a)/da = 2a, d(a-a)/da = 0.
        require_gradcheck([](const std::vector<Tensor>& in) { return mul(in[0], in[0]); }, {a});
        require_gradcheck([](const std::vector<Tensor>& in) { return sub(in[0], in[0]) + in[0] * 0.5; }, {a});
    }
}

TEST_CASE("mul gives gradients of the documented values and only where needed", "[elementwise]") {
    Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).set_requires_grad(true);
    Tensor b = Tensor::from_vector(std::vector<double>{4, 5, 6}, {3});
    Tensor y = sum(mul(a, b));
    y.backward();
    testing::require_close(a.grad(), b, 0, 0);
    CHECK_FALSE(b.grad().defined());
    CHECK_FALSE(b.requires_grad());
}

TEST_CASE("ops record no graph without requires_grad or under NoGradGuard", "[elementwise]") {
    Tensor a = Tensor::ones({2, 2}, DType::Float64);
    Tensor b = Tensor::ones({2, 2}, DType::Float64).set_requires_grad(true);
    CHECK_FALSE(add(a, a).requires_grad());
    CHECK(add(a, b).requires_grad());
    CHECK(add(a, b).grad_fn()->op_name == "add");
    NoGradGuard no_grad;
    CHECK_FALSE(relu(b).requires_grad());
    CHECK(relu(b).grad_fn() == nullptr);
}

TEST_CASE("relu forward values, NaN and the gradient at zero", "[activation]") {
    Tensor x = Tensor::from_vector(std::vector<double>{-1, 0, 2, -0.5, 3e-9}, {5}).set_requires_grad(true);
    Tensor y = relu(x);
    testing::require_close(y, Tensor::from_vector(std::vector<double>{0, 0, 2, 0, 3e-9}, {5}), 0, 0);
    y.backward(Tensor::from_vector(std::vector<double>{10, 20, 30, 40, 50}, {5}));
    // The gradient at exactly 0 is 0, as in PyTorch.
    testing::require_close(x.grad(), Tensor::from_vector(std::vector<double>{0, 0, 30, 0, 50}, {5}), 0, 0);

    Tensor with_nan = Tensor::from_vector(std::vector<float>{std::numeric_limits<float>::quiet_NaN(), -1.0f}, {2});
    std::vector<float> out = relu(with_nan).to_float_vector();
    CHECK(std::isnan(out[0]));
    CHECK(out[1] == 0.0f);
}

TEST_CASE("relu gradient on odd shapes, inputs away from zero", "[activation][gradcheck]") {
    Generator generator(5);
    for (const Shape& shape : std::vector<Shape>{{1}, {7}, {3, 5}, {2, 3, 5}, {1, 3, 4, 5}}) {
        INFO("shape " << shape_string(shape));
        Tensor x = input_away_from_zero(shape, generator);
        require_gradcheck([](const std::vector<Tensor>& in) { return relu(in[0]); }, {x});
        // Composed with mul, so that the incoming gradient is itself not trivial; x^3 keeps the
        // sign of x and stays at least 1e-3 away from the kink.
        require_gradcheck([](const std::vector<Tensor>& in) { return relu(in[0] * in[0] * in[0]); }, {x});
    }
}

TEST_CASE("relu backward on a large tensor matches a plain loop", "[activation]") {
    Generator generator(9);
    Tensor x = random_tensor<float>({3, 40000}, generator).set_requires_grad(true);
    Tensor g = random_tensor<float>({3, 40000}, generator);
    relu(x).backward(g);
    std::vector<float> xs = x.to_float_vector(), gs = g.to_float_vector(), expected(xs.size());
    for (std::size_t i = 0; i < xs.size(); ++i) expected[i] = xs[i] > 0 ? gs[i] : 0.0f;
    testing::require_close(x.grad(), Tensor::from_vector(expected, {3, 40000}), 0, 0);
}

TEST_CASE("elementwise bad inputs name the op and the shapes", "[elementwise][errors]") {
    Tensor a = Tensor::ones({2, 3});
    Tensor b = Tensor::ones({3, 2});
    require_error([&] { add(a, b); }, {"add", "[2, 3]", "[3, 2]"});
    require_error([&] { sub(a, b); }, {"sub", "[2, 3]", "[3, 2]"});
    require_error([&] { mul(a, b); }, {"mul", "[2, 3]", "[3, 2]"});
    require_error([&] { (void)(a * b); }, {"mul", "[2, 3]", "[3, 2]"});
    // No broadcasting, not even of a size-1 dimension.
    require_error([&] { add(a, Tensor::ones({1, 3})); }, {"add", "[2, 3]", "[1, 3]"});

    Tensor labels = Tensor::zeros({2, 3}, DType::Int64);
    require_error([&] { add(labels, labels); }, {"add", "int64", "[2, 3]"});
    require_error([&] { scale(labels, 2.0); }, {"scale", "int64", "[2, 3]"});
    require_error([&] { add_scalar(labels, 1.0); }, {"add_scalar", "int64", "[2, 3]"});
    require_error([&] { relu(labels); }, {"relu", "int64", "[2, 3]"});

    Tensor empty = Tensor::empty({0, 3});
    require_error([&] { add(empty, empty); }, {"add", "empty", "[0, 3]"});
    require_error([&] { relu(empty); }, {"relu", "empty", "[0, 3]"});
    require_error([&] { scale(empty, 1.0); }, {"scale", "empty", "[0, 3]"});

    require_error([&] { mul(a, Tensor::ones({2, 3}, DType::Float64)); }, {"mul", "float32", "float64"});
    require_error([&] { add(a, Tensor()); }, {"add", "undefined"});
}
