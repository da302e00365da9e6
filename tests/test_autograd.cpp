// The tape itself, tested with small ops defined here through record_op, so that a bug in an
// op cannot hide a bug in the tape or the other way round.
#include <cudagrad/cudagrad.hpp>

#include "catch.hpp"

using namespace cudagrad;

namespace {
// y = a * factor, recording its node.
Tensor times(const Tensor& a, double factor) {
    Tensor y = Tensor::empty(a.shape(), DType::Float64);
    for (std::int64_t i = 0; i < a.numel(); ++i) y.data<double>()[i] = a.data<double>()[i] * factor;
    record_op(y, "times", {a}, [factor](const Tensor& gy) { return std::vector<Tensor>{times(gy, factor)}; });
    return y;
}

// y = a * b elementwise.
Tensor product(const Tensor& a, const Tensor& b) {
    Tensor y = Tensor::empty(a.shape(), DType::Float64);
    for (std::int64_t i = 0; i < a.numel(); ++i) y.data<double>()[i] = a.data<double>()[i] * b.data<double>()[i];
    record_op(y, "product", {a, b}, [a = a.detach(), b = b.detach()](const Tensor& gy) {
        return std::vector<Tensor>{product(gy, b), product(gy, a)};
    });
    return y;
}

// Sum of all elements, to a one-element tensor.
Tensor total(const Tensor& a) {
    double sum = 0;
    for (std::int64_t i = 0; i < a.numel(); ++i) sum += a.data<double>()[i];
    Tensor y = Tensor::full({}, sum, DType::Float64);
    Shape shape = a.shape();
    record_op(y, "total", {a}, [shape](const Tensor& gy) {
        return std::vector<Tensor>{Tensor::full(shape, gy.item(), DType::Float64)};
    });
    return y;
}

Tensor leaf(std::vector<double> values) {
    Shape shape{static_cast<std::int64_t>(values.size())};
    Tensor tensor = Tensor::from_vector(values, shape);
    tensor.set_requires_grad(true);
    return tensor;
}
}  // namespace

TEST_CASE("a tensor used twice receives the sum of both paths") {
    Tensor x = leaf({1.0, 2.0, 3.0});
    Tensor y = product(x, x);  // d/dx sum(x*x) = 2x
    Tensor z = total(times(y, 3.0));
    z.backward();
    CHECK(x.grad().to_double_vector() == std::vector<double>{6.0, 12.0, 18.0});
    CHECK(y.grad_fn() != nullptr);
    CHECK(x.is_leaf());
}

TEST_CASE("a diamond graph visits the shared node once, after both branches") {
    // h = 2x; out = sum(h * 3) + sum(h * 5) -> d/dx = 2 * (3 + 5) = 16
    Tensor x = leaf({1.0, -1.0});
    Tensor h = times(x, 2.0);
    Tensor left = total(times(h, 3.0));
    Tensor right = total(times(h, 5.0));
    // Join the branches with a two-input op, so both paths meet again at h.
    Tensor both = Tensor::empty({2}, DType::Float64);
    both.data<double>()[0] = left.item();
    both.data<double>()[1] = right.item();
    record_op(both, "stack", {left, right}, [](const Tensor& gy) {
        return std::vector<Tensor>{Tensor::full({}, gy.at({0}), DType::Float64),
                                   Tensor::full({}, gy.at({1}), DType::Float64)};
    });
    total(both).backward();
    CHECK(x.grad().to_double_vector() == std::vector<double>{16.0, 16.0});
}

TEST_CASE("gradients accumulate across backward calls until zeroed") {
    Tensor x = leaf({1.0, 2.0});
    total(times(x, 2.0)).backward();
    total(times(x, 2.0)).backward();
    CHECK(x.grad().to_double_vector() == std::vector<double>{4.0, 4.0});
    x.zero_grad(false);
    CHECK(x.grad().to_double_vector() == std::vector<double>{0.0, 0.0});
    x.zero_grad(true);
    CHECK_FALSE(x.grad().defined());
}

TEST_CASE("no-grad mode records nothing") {
    Tensor x = leaf({1.0});
    {
        NoGradGuard guard;
        CHECK_FALSE(grad_mode_enabled());
        Tensor y = times(x, 2.0);
        CHECK_FALSE(y.requires_grad());
        CHECK(y.grad_fn() == nullptr);
    }
    CHECK(grad_mode_enabled());
    CHECK(times(x, 2.0).requires_grad());
}

TEST_CASE("backward errors name the problem") {
    Tensor x = leaf({1.0, 2.0});
    Tensor y = times(x, 2.0);
    CHECK_THROWS_WITH(y.backward(), testing::message_contains("one-element output"));
    Tensor plain = Tensor::ones({1}, DType::Float64);
    CHECK_THROWS_WITH(plain.backward(), testing::message_contains("does not require a gradient"));
    Tensor z = total(y);
    z.backward();
    CHECK_THROWS_WITH(z.backward(), testing::message_contains("already freed"));
    Tensor w = total(times(x, 1.0));
    w.backward(Tensor(), true);
    w.backward();  // retained: a second pass works
    CHECK(x.grad().to_double_vector() == std::vector<double>{2.0 + 2.0, 2.0 + 2.0});
}

TEST_CASE("a deep chain does not exhaust the stack") {
    Tensor x = leaf({1.0});
    Tensor y = x;
    for (int i = 0; i < 5000; ++i) y = times(y, 1.0);
    total(y).backward();
    CHECK(x.grad().item() == 1.0);
}
