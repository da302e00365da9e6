// Tests for src/ops/loss.cpp and src/cpu/loss.cpp: softmax, log_softmax and cross_entropy.
//
// What is checked: hand-computed values (softmax of [1, 2, 3], cross-entropy of uniform
// logits = log(classes), a smoothed loss worked out by hand); both kernel layouts (rows and
// columns) against a plain double loop in float32 and float64, including sizes that go through
// the thread pool; finite-difference gradients in float64 over dims 0 and 1, a 3-d tensor over
// its last and middle dims, and cross-entropy with and without smoothing, batch 1, 1000 classes
// and non-contiguous logits; stability at logits of +-1000; and bad inputs naming the op, the
// shapes and the bad label with its index.
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

bool all_finite(const Tensor& x) {
    for (double value : x.to_double_vector()) {
        if (!std::isfinite(value)) return false;
    }
    return true;
}

// Plain-loop (log-)softmax over `dimension`, in double, straight from the definition.
std::vector<double> reference_softmax(const Tensor& x, std::size_t dimension, bool logarithm) {
    const Shape& shape = x.shape();
    std::int64_t outer = 1, inner = 1;
    for (std::size_t d = 0; d < dimension; ++d) outer *= shape[d];
    for (std::size_t d = dimension + 1; d < shape.size(); ++d) inner *= shape[d];
    const std::int64_t extent = shape[dimension];
    std::vector<double> values = x.to_double_vector(), result(values.size());
    auto at = [&](std::int64_t o, std::int64_t r, std::int64_t i) {
        return static_cast<std::size_t>((o * extent + r) * inner + i);
    };
    for (std::int64_t o = 0; o < outer; ++o) {
        for (std::int64_t i = 0; i < inner; ++i) {
            double maximum = -INFINITY, total = 0.0;
            for (std::int64_t r = 0; r < extent; ++r) maximum = std::max(maximum, values[at(o, r, i)]);
            for (std::int64_t r = 0; r < extent; ++r) total += std::exp(values[at(o, r, i)] - maximum);
            for (std::int64_t r = 0; r < extent; ++r) {
                const double shifted = values[at(o, r, i)] - maximum;
                result[at(o, r, i)] = logarithm ? shifted - std::log(total) : std::exp(shifted) / total;
            }
        }
    }
    return result;
}

// PyTorch's definition, term by term, in double.
double reference_cross_entropy(const Tensor& logits, const std::vector<std::int64_t>& labels, double smoothing) {
    const std::int64_t batch = logits.size(0), classes = logits.size(1);
    std::vector<double> log_p = reference_softmax(logits, 1, true);
    double total = 0.0;
    for (std::int64_t n = 0; n < batch; ++n) {
        double uniform = 0.0;
        for (std::int64_t c = 0; c < classes; ++c) uniform += -log_p[static_cast<std::size_t>(n * classes + c)];
        const double label = -log_p[static_cast<std::size_t>(n * classes + labels[static_cast<std::size_t>(n)])];
        total += (1.0 - smoothing) * label + smoothing * uniform / static_cast<double>(classes);
    }
    return total / static_cast<double>(batch);
}

Tensor random_labels(std::int64_t batch, std::int64_t classes, Generator& generator) {
    std::vector<std::int64_t> labels(static_cast<std::size_t>(batch));
    for (auto& label : labels) {
        label = static_cast<std::int64_t>(generator.below(static_cast<std::uint64_t>(classes)));
    }
    return Tensor::from_vector(labels, {batch});
}

}  // namespace

TEST_CASE("softmax and log_softmax: hand-computed values", "[softmax]") {
    Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3}, {1, 3});
    const double total = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
    testing::require_close(softmax(x, 1),
                           Tensor::from_vector(std::vector<double>{std::exp(1.0) / total, std::exp(2.0) / total,
                                                                   std::exp(3.0) / total},
                                               {1, 3}),
                           1e-15, 0);
    const double log_total = std::log(total);
    Tensor expected_log = Tensor::from_vector(std::vector<double>{1 - log_total, 2 - log_total, 3 - log_total}, {1, 3});
    testing::require_close(log_softmax(x, -1), expected_log, 1e-15, 0);
    // Over dim 0 of a (1, 3) tensor every column holds one element: all ones, all zeros.
    testing::require_close(softmax(x, 0), Tensor::ones({1, 3}, DType::Float64), 0, 0);
    testing::require_close(log_softmax(x, 0), Tensor::zeros({1, 3}, DType::Float64), 0, 0);
}

TEST_CASE("softmax kernels match a plain loop on both layouts", "[softmax]") {
    Generator generator(21);
    // Row layout (last dim) and column layout (earlier dims); (64, 1000) and (1000, 64) go
    // through the thread pool.
    const std::vector<Shape> shapes = {{5, 7}, {2, 3, 4}, {3, 9, 2}, {1, 1}, {64, 1000}, {1000, 64}};
    for (DType dtype : {DType::Float32, DType::Float64}) {
        for (const Shape& shape : shapes) {
            Tensor x = Tensor::empty(shape, dtype);
            uniform_(x, -8.0, 8.0, generator);
            for (std::size_t d = 0; d < shape.size(); ++d) {
                INFO(shape_string(shape) << " " << dtype_name(dtype) << " dimension " << d);
                const double rtol = dtype == DType::Float32 ? 2e-6 : 1e-13;
                Tensor y = softmax(x, static_cast<std::int64_t>(d));
                REQUIRE(y.dtype() == dtype);
                testing::require_close(y, Tensor::from_vector(reference_softmax(x, d, false), shape), rtol, 1e-30);
                Tensor log_y = log_softmax(x, static_cast<std::int64_t>(d));
                testing::require_close(log_y, Tensor::from_vector(reference_softmax(x, d, true), shape), rtol,
                                       dtype == DType::Float32 ? 2e-6 : 1e-13);
            }
        }
    }
}

TEST_CASE("softmax and log_softmax gradients over dims 0 and 1 and a 3-d last dim", "[softmax][gradcheck]") {
    Generator generator(22);
    Tensor x = testing::random_input({4, 5}, generator, -3.0, 3.0);
    Tensor cube = testing::random_input({2, 3, 5}, generator, -3.0, 3.0);
    Tensor batch_one = testing::random_input({1, 7}, generator, -3.0, 3.0);
    for (std::int64_t d : {0, 1, -1}) {
        INFO("dimension " << d);
        require_gradcheck([d](const std::vector<Tensor>& in) { return softmax(in[0], d); }, {x});
        require_gradcheck([d](const std::vector<Tensor>& in) { return log_softmax(in[0], d); }, {x});
        require_gradcheck([d](const std::vector<Tensor>& in) { return softmax(in[0], d); }, {batch_one});
    }
    for (std::int64_t d : {2, 1, 0}) {
        INFO("3-d dimension " << d);
        require_gradcheck([d](const std::vector<Tensor>& in) { return softmax(in[0], d); }, {cube});
        require_gradcheck([d](const std::vector<Tensor>& in) { return log_softmax(in[0], d); }, {cube});
    }
    // A parallel-sized softmax: the backward of both layouts against the formula in double.
    for (std::int64_t d : {0, 1}) {
        Tensor big = Tensor::empty({300, 80}, DType::Float64);
        uniform_(big, -2.0, 2.0, generator);
        big.set_requires_grad(true);
        Tensor g = Tensor::empty({300, 80}, DType::Float64);
        uniform_(g, -1.0, 1.0, generator);
        Tensor y = softmax(big, d);
        y.backward(g);
        // dx = y * (g - sum_d(g * y)), written with the library's own tested ops.
        Tensor dot = sum(mul(g, y.detach()), d, true);
        std::vector<double> ys = y.to_double_vector(), gs = g.to_double_vector(), dots = dot.to_double_vector();
        std::vector<double> expected(ys.size());
        for (std::size_t i = 0; i < ys.size(); ++i) {
            const std::size_t reduced = d == 0 ? i % 80 : i / 80;
            expected[i] = ys[i] * (gs[i] - dots[reduced]);
        }
        testing::require_close(big.grad(), Tensor::from_vector(expected, {300, 80}), 1e-12, 1e-15);
    }
}

TEST_CASE("softmax is stable at logits of +-1000", "[softmax]") {
    for (DType dtype : {DType::Float32, DType::Float64}) {
        INFO(dtype_name(dtype));
        Tensor x = Tensor::from_vector(std::vector<double>{1000, -1000, 0, -1000, 1000, 1000}, {2, 3}).to(dtype);
        Tensor y = softmax(x, 1);
        REQUIRE(all_finite(y));
        Tensor expected = Tensor::from_vector(std::vector<double>{1, 0, 0, 0, 0.5, 0.5}, {2, 3});
        testing::require_close(y, expected, 1e-6, 1e-30);
        Tensor log_y = log_softmax(x, 1);
        REQUIRE(all_finite(log_y));
        const double log_two = std::log(2.0);
        Tensor expected_log = Tensor::from_vector(
            std::vector<double>{0, -2000, -1000, -2000 - log_two, -log_two, -log_two}, {2, 3});
        testing::require_close(log_y, expected_log, 1e-6, 1e-6);
        Tensor columns = softmax(x, 0);
        REQUIRE(all_finite(columns));
    }
}

TEST_CASE("cross_entropy forward values", "[cross_entropy]") {
    // Uniform logits: p = 1/classes for every class, so the loss is log(classes), smoothed or not.
    for (std::int64_t classes : {1, 2, 10, 1000}) {
        Tensor logits = Tensor::full({3, classes}, 0.7, DType::Float64);
        Tensor labels = Tensor::full({3}, static_cast<double>(classes - 1), DType::Int64);
        INFO("classes " << classes);
        CHECK(std::abs(cross_entropy(logits, labels).item() - std::log(static_cast<double>(classes))) < 1e-12);
        CHECK(std::abs(cross_entropy(logits, labels, 0.1).item() - std::log(static_cast<double>(classes))) < 1e-12);
    }
    // One row [1, 2, 3], label 0: lse - 1 unsmoothed; smoothed 0.9 * (lse - 1) + 0.1 * (lse - 2).
    Tensor logits = Tensor::from_vector(std::vector<float>{1, 2, 3}, {1, 3});
    Tensor label = Tensor::from_vector(std::vector<std::int64_t>{0}, {1});
    const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
    Tensor loss = cross_entropy(logits, label);
    CHECK(loss.shape() == Shape{});
    CHECK(loss.dtype() == DType::Float32);
    CHECK(std::abs(loss.item() - (lse - 1.0)) < 1e-6);
    CHECK(std::abs(cross_entropy(logits, label, 0.1).item() - (0.9 * (lse - 1.0) + 0.1 * (lse - 2.0))) < 1e-6);
    CHECK(std::abs(cross_entropy(logits, label, 1.0).item() - (lse - 2.0)) < 1e-6);
}

TEST_CASE("cross_entropy matches the definition on random inputs", "[cross_entropy]") {
    Generator generator(31);
    for (DType dtype : {DType::Float32, DType::Float64}) {
        for (std::vector<std::int64_t> size : {std::vector<std::int64_t>{7, 13}, {1, 5}, {2, 1000}, {300, 100}}) {
            Tensor logits = Tensor::empty({size[0], size[1]}, dtype);
            uniform_(logits, -5.0, 5.0, generator);
            Tensor labels = random_labels(size[0], size[1], generator);
            for (double smoothing : {0.0, 0.1, 1.0}) {
                INFO(shape_string(logits.shape()) << " " << dtype_name(dtype) << " smoothing " << smoothing);
                const double expected = reference_cross_entropy(logits, labels.to_int64_vector(), smoothing);
                const double tolerance = dtype == DType::Float32 ? 1e-6 : 1e-12;
                CHECK(std::abs(cross_entropy(logits, labels, smoothing).item() - expected) <=
                      tolerance * std::abs(expected));
            }
        }
    }
}

TEST_CASE("cross_entropy gradient: formula, gradcheck, batch 1, 1000 classes", "[cross_entropy][gradcheck]") {
    Generator generator(32);
    // The documented formula on a hand case: dlogits = (softmax - target) / N.
    Tensor logits = Tensor::from_vector(std::vector<double>{1, 2, 3, 0, 0, 0}, {2, 3}).set_requires_grad(true);
    Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{2, 0}, {2});
    cross_entropy(logits, labels, 0.1).backward();
    std::vector<double> p = reference_softmax(logits, 1, false);
    std::vector<double> target{0.1 / 3, 0.1 / 3, 0.9 + 0.1 / 3, 0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3};
    std::vector<double> expected(6);
    for (std::size_t i = 0; i < 6; ++i) expected[i] = (p[i] - target[i]) / 2.0;
    testing::require_close(logits.grad(), Tensor::from_vector(expected, {2, 3}), 1e-13, 1e-16);

    for (std::vector<std::int64_t> size : {std::vector<std::int64_t>{5, 7}, {1, 4}, {1, 1}, {3, 1}, {2, 1000}}) {
        Tensor x = testing::random_input({size[0], size[1]}, generator, -3.0, 3.0);
        Tensor y = random_labels(size[0], size[1], generator);
        for (double smoothing : {0.0, 0.1}) {
            INFO(shape_string(x.shape()) << " smoothing " << smoothing);
            require_gradcheck(
                [y, smoothing](const std::vector<Tensor>& in) { return cross_entropy(in[0], y, smoothing); }, {x});
        }
    }
    // Non-contiguous logits: a transposed (classes, N) tensor.
    Tensor transposed = testing::random_input({6, 4}, generator, -3.0, 3.0);
    Tensor four_labels = random_labels(4, 6, generator);
    require_gradcheck(
        [four_labels](const std::vector<Tensor>& in) {
            return cross_entropy(transpose(in[0], 0, 1), four_labels, 0.1);
        },
        {transposed});
    // Composed: log_softmax feeding a mean, against cross_entropy's own loss and gradient.
    Tensor z = testing::random_input({3, 4}, generator);
    Tensor ones_label = Tensor::from_vector(std::vector<std::int64_t>{1, 1, 1}, {3});
    Tensor picked = slice(log_softmax(z, 1), 1, 1, 2);
    CHECK(std::abs(cross_entropy(z, ones_label).item() + mean(picked).item()) < 1e-14);
}

TEST_CASE("cross_entropy is stable at logits of +-1000", "[cross_entropy]") {
    for (DType dtype : {DType::Float32, DType::Float64}) {
        INFO(dtype_name(dtype));
        Tensor logits = Tensor::from_vector(std::vector<double>{1000, -1000, -1000, 1000}, {2, 2}).to(dtype);
        logits.set_requires_grad(true);
        Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{0, 0}, {2});
        // Row 0 is right with certainty (loss 0), row 1 wrong by 2000.
        Tensor loss = cross_entropy(logits, labels);
        CHECK(std::abs(loss.item() - 1000.0) < 1e-3);
        loss.backward();
        REQUIRE(all_finite(logits.grad()));
        testing::require_close(logits.grad(), Tensor::from_vector(std::vector<double>{0, 0, -0.5, 0.5}, {2, 2}), 1e-6,
                               1e-7);
        // Smoothed: row 0 is 0.1 * (1000 - 0) = 100, row 1 is 0.9 * 2000 + 0.1 * 1000 = 1900.
        Tensor smoothed = cross_entropy(logits, labels, 0.1);
        CHECK(std::abs(smoothed.item() - 1000.0) < 1e-3);
    }
}

TEST_CASE("softmax and cross_entropy bad inputs name the op, the shapes and the labels", "[loss][errors]") {
    Tensor logits = Tensor::zeros({4, 10});
    Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{1, 2, 3, 4}, {4});
    require_error([&] { cross_entropy(logits, Tensor::from_vector(std::vector<std::int64_t>{1, 2, 3, 12}, {4})); },
                  {"cross_entropy", "label 12", "index 3", "[0, 10)"});
    require_error([&] { cross_entropy(logits, Tensor::from_vector(std::vector<std::int64_t>{1, -1, 3, 4}, {4})); },
                  {"cross_entropy", "label -1", "index 1"});
    require_error([&] { cross_entropy(logits, Tensor::zeros({4})); }, {"cross_entropy", "int64", "float32", "[4]"});
    require_error([&] { cross_entropy(logits, Tensor::zeros({3}, DType::Int64)); },
                  {"cross_entropy", "[4, 10]", "[3]"});
    require_error([&] { cross_entropy(logits, Tensor::zeros({4, 1}, DType::Int64)); },
                  {"cross_entropy", "[4, 10]", "[4, 1]"});
    require_error([&] { cross_entropy(Tensor::zeros({10}), labels); }, {"cross_entropy", "[10]"});
    require_error([&] { cross_entropy(Tensor::zeros({4, 10, 1}), labels); }, {"cross_entropy", "[4, 10, 1]"});
    require_error([&] { cross_entropy(Tensor::zeros({4, 10}, DType::Int64), labels); },
                  {"cross_entropy", "int64", "[4, 10]"});
    require_error([&] { cross_entropy(Tensor::empty({0, 10}), Tensor::empty({0}, DType::Int64)); },
                  {"cross_entropy", "empty", "[0, 10]"});
    require_error([&] { cross_entropy(logits, labels, -0.1); }, {"cross_entropy", "label_smoothing", "-0.1"});
    require_error([&] { cross_entropy(logits, labels, 1.5); }, {"cross_entropy", "label_smoothing", "1.5"});
    require_error([&] { cross_entropy(logits, labels, std::numeric_limits<double>::quiet_NaN()); },
                  {"cross_entropy", "label_smoothing"});
    require_error([&] { cross_entropy(logits, Tensor()); }, {"cross_entropy", "undefined"});

    require_error([&] { softmax(logits, 2); }, {"softmax", "dimension 2", "[4, 10]"});
    require_error([&] { log_softmax(logits, -3); }, {"log_softmax", "dimension -3", "[4, 10]"});
    require_error([&] { softmax(labels, 0); }, {"softmax", "int64", "[4]"});
    require_error([&] { log_softmax(Tensor::empty({3, 0}), 1); }, {"log_softmax", "empty", "[3, 0]"});
}
