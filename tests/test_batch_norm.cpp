// Tests for batch_norm2d (src/ops/batch_norm.cpp, src/cpu/batch_norm.cpp).
//
// What is checked:
//   * forward values and running-statistic updates against numbers worked out by hand
//     (biased variance for y, unbiased variance and momentum for running_var, num_batches_tracked);
//   * eval mode normalises with the running statistics and leaves them alone;
//   * finite-difference gradients (float64) of x, weight and bias, training and eval, on awkward
//     shapes: batch 1 with H*W > 1, 1x1 planes, channel counts that are not multiples of 8;
//   * the kernels against a plain-loop reference written from the textbook derivation (not the
//     compact formula the kernel uses), in float32 and float64, on shapes big enough to run
//     several parallel chunks;
//   * float32 accuracy with a large mean (the reductions must accumulate in double);
//   * bad input: each error message names batch_norm2d and the offending shape or value.
#include <cmath>
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

Tensor make_running_var(std::int64_t channels, Generator& generator) {
    Tensor variance = Tensor::empty({channels}, DType::Float64);
    uniform_(variance, 0.5, 2.0, generator);
    return variance;
}

// ---- plain-loop reference, written from the step-by-step derivation of the backward pass ----
struct Reference {
    std::vector<double> y, dx, dweight, dbias;
};

Reference reference_batch_norm(const std::vector<double>& x, const std::vector<double>& weight,
                               const std::vector<double>& bias, const std::vector<double>& dy,
                               const std::vector<double>& running_mean, const std::vector<double>& running_var,
                               std::int64_t batch, std::int64_t channels, std::int64_t plane, bool training,
                               double eps) {
    Reference result{std::vector<double>(x.size()), std::vector<double>(x.size()),
                     std::vector<double>(static_cast<std::size_t>(channels)),
                     std::vector<double>(static_cast<std::size_t>(channels))};
    const double count = static_cast<double>(batch * plane);
    auto index = [&](std::int64_t n, std::int64_t c, std::int64_t i) {
        return static_cast<std::size_t>((n * channels + c) * plane + i);
    };
    for (std::int64_t c = 0; c < channels; ++c) {
        const auto cs = static_cast<std::size_t>(c);
        double mean = running_mean.empty() ? 0.0 : running_mean[cs];
        double variance = running_var.empty() ? 0.0 : running_var[cs];
        if (training) {
            mean = 0.0;
            for (std::int64_t n = 0; n < batch; ++n)
                for (std::int64_t i = 0; i < plane; ++i) mean += x[index(n, c, i)];
            mean /= count;
            variance = 0.0;
            for (std::int64_t n = 0; n < batch; ++n)
                for (std::int64_t i = 0; i < plane; ++i) variance += std::pow(x[index(n, c, i)] - mean, 2);
            variance /= count;
        }
        const double inverse_std = 1.0 / std::sqrt(variance + eps);
        // d loss / d variance and d loss / d mean through xhat = (x - mean) * inverse_std.
        double d_variance = 0.0, d_mean = 0.0, sum_centered = 0.0;
        for (std::int64_t n = 0; n < batch; ++n) {
            for (std::int64_t i = 0; i < plane; ++i) {
                const std::size_t k = index(n, c, i);
                const double xhat = (x[k] - mean) * inverse_std;
                result.y[k] = xhat * weight[cs] + bias[cs];
                result.dweight[cs] += dy[k] * xhat;
                result.dbias[cs] += dy[k];
                const double d_xhat = dy[k] * weight[cs];
                d_variance += d_xhat * (x[k] - mean) * -0.5 * std::pow(variance + eps, -1.5);
                d_mean += -d_xhat * inverse_std;
                sum_centered += -2.0 * (x[k] - mean);
            }
        }
        d_mean += d_variance * sum_centered / count;
        for (std::int64_t n = 0; n < batch; ++n) {
            for (std::int64_t i = 0; i < plane; ++i) {
                const std::size_t k = index(n, c, i);
                const double d_xhat = dy[k] * weight[cs];
                result.dx[k] = d_xhat * inverse_std;
                if (training) result.dx[k] += d_variance * 2.0 * (x[k] - mean) / count + d_mean / count;
            }
        }
    }
    return result;
}

void compare_with_reference(const Shape& shape, DType dtype, bool training) {
    INFO("shape " << shape_string(shape) << ", " << dtype_name(dtype) << (training ? ", training" : ", eval"));
    Generator generator(shape_numel(shape) + (training ? 1 : 2));
    const std::int64_t channels = shape[1];
    // Inputs are drawn in float64 and rounded to dtype; the reference then sees exactly the
    // values the op sees.
    Tensor x_values = Tensor::empty(shape, DType::Float64);
    normal_(x_values, 0.25, 1.5, generator);
    Tensor x = x_values.to(dtype);
    Tensor weight = rand({channels}, DType::Float64, generator).to(dtype);
    Tensor bias = randn({channels}, DType::Float64, generator).to(dtype);
    Tensor dy = randn(shape, DType::Float64, generator).to(dtype);
    Tensor running_mean = randn({channels}, DType::Float64, generator).to(dtype);
    Tensor running_var = make_running_var(channels, generator).to(dtype);
    const double eps = 1e-5;
    Reference expected = reference_batch_norm(
        x.to_double_vector(), weight.to_double_vector(), bias.to_double_vector(), dy.to_double_vector(),
        running_mean.to_double_vector(), running_var.to_double_vector(), shape[0], channels, shape[2] * shape[3],
        training, eps);

    x.set_requires_grad(true);
    weight.set_requires_grad(true);
    bias.set_requires_grad(true);
    BatchNormOptions options;
    options.training = training;
    options.eps = eps;
    Tensor y = batch_norm2d(x, weight, bias, running_mean, running_var, Tensor(), options);
    y.backward(dy);
    const double rtol = dtype == DType::Float32 ? 1e-4 : 1e-10;
    const double atol = dtype == DType::Float32 ? 1e-4 : 1e-10;
    require_close(y, Tensor::from_vector(expected.y, shape), rtol, atol);
    require_close(x.grad(), Tensor::from_vector(expected.dx, shape), rtol, atol);
    // Channel sums of up to a few thousand float32 terms: allow for their rounding.
    const double sum_atol = dtype == DType::Float32 ? 2e-3 : 1e-9;
    require_close(weight.grad(), Tensor::from_vector(expected.dweight, {channels}), rtol, sum_atol);
    require_close(bias.grad(), Tensor::from_vector(expected.dbias, {channels}), rtol, sum_atol);
}

}  // namespace

TEST_CASE("batch_norm2d training forward and running statistics match a hand computation", "[batch_norm]") {
    // x: (2, 2, 1, 2). Channel 0 holds 1, 2, 3, 4: mean 2.5, biased variance 1.25, unbiased 5/3.
    // Channel 1 holds 0, 0, 6, -2: mean 1, biased variance 36/4 = 9, unbiased 12.
    Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 0, 0, 3, 4, 6, -2}, {2, 2, 1, 2});
    Tensor weight = Tensor::from_vector(std::vector<double>{2, -1}, {2});
    Tensor bias = Tensor::from_vector(std::vector<double>{0.5, 3}, {2});
    Tensor running_mean = Tensor::from_vector(std::vector<double>{0.5, -1}, {2});
    Tensor running_var = Tensor::from_vector(std::vector<double>{1, 2}, {2});
    Tensor tracked = Tensor::from_vector(std::vector<std::int64_t>{0}, {});
    BatchNormOptions options;
    options.momentum = 0.2;
    options.eps = 0.0;  // exact hand values
    Tensor y = batch_norm2d(x, weight, bias, running_mean, running_var, tracked, options);

    const double s = std::sqrt(1.25);
    std::vector<double> expected = {(1 - 2.5) / s * 2 + 0.5, (2 - 2.5) / s * 2 + 0.5, (0 - 1) / 3.0 * -1 + 3,
                                    (0 - 1) / 3.0 * -1 + 3,  (3 - 2.5) / s * 2 + 0.5, (4 - 2.5) / s * 2 + 0.5,
                                    (6 - 1) / 3.0 * -1 + 3,  (-2 - 1) / 3.0 * -1 + 3};
    require_close(y, Tensor::from_vector(expected, {2, 2, 1, 2}), 1e-12, 1e-12);
    // running = 0.8 * running + 0.2 * statistic, with the unbiased variance.
    require_close(running_mean, Tensor::from_vector(std::vector<double>{0.8 * 0.5 + 0.2 * 2.5, 0.8 * -1 + 0.2 * 1}, {2}),
                  1e-12, 1e-12);
    require_close(running_var,
                  Tensor::from_vector(std::vector<double>{0.8 * 1 + 0.2 * 5.0 / 3.0, 0.8 * 2 + 0.2 * 12}, {2}), 1e-12,
                  1e-12);
    CHECK(tracked.to_int64_vector() == std::vector<std::int64_t>{1});

    // A second step updates again; num_batches_tracked of shape [1] works too.
    Tensor tracked_one = Tensor::from_vector(std::vector<std::int64_t>{41}, {1});
    batch_norm2d(x, weight, bias, running_mean, running_var, tracked_one, options);
    CHECK(tracked_one.to_int64_vector() == std::vector<std::int64_t>{42});
    CHECK(std::abs(running_mean.at({0}) - (0.8 * 0.9 + 0.2 * 2.5)) < 1e-12);

    // Running statistics are optional in training: y is the same without them.
    Tensor y_without = batch_norm2d(x, weight, bias, Tensor(), Tensor(), Tensor(), options);
    require_close(y_without, y, 1e-12, 1e-12);
}

TEST_CASE("batch_norm2d eval mode normalises with the running statistics and leaves them alone", "[batch_norm]") {
    Generator generator(7);
    Tensor x = randn({3, 4, 2, 5}, DType::Float64, generator);
    Tensor weight = randn({4}, DType::Float64, generator);
    Tensor bias = randn({4}, DType::Float64, generator);
    Tensor running_mean = randn({4}, DType::Float64, generator);
    Tensor running_var = make_running_var(4, generator);
    Tensor tracked = Tensor::from_vector(std::vector<std::int64_t>{5}, {});
    const std::vector<double> mean_before = running_mean.to_double_vector();
    const std::vector<double> var_before = running_var.to_double_vector();
    BatchNormOptions options;
    options.training = false;
    options.eps = 1e-3;
    Tensor y = batch_norm2d(x, weight, bias, running_mean, running_var, tracked, options);
    for (std::int64_t n = 0; n < 3; ++n)
        for (std::int64_t c = 0; c < 4; ++c)
            for (std::int64_t h = 0; h < 2; ++h)
                for (std::int64_t w = 0; w < 5; ++w) {
                    const double expected = (x.at({n, c, h, w}) - mean_before[c]) / std::sqrt(var_before[c] + 1e-3) *
                                                weight.at({c}) +
                                            bias.at({c});
                    REQUIRE(std::abs(y.at({n, c, h, w}) - expected) < 1e-12);
                }
    CHECK(running_mean.to_double_vector() == mean_before);
    CHECK(running_var.to_double_vector() == var_before);
    CHECK(tracked.to_int64_vector() == std::vector<std::int64_t>{5});
    // One value per channel is fine in eval mode.
    Tensor single = randn({1, 4, 1, 1}, DType::Float64, generator);
    CHECK(batch_norm2d(single, weight, bias, running_mean, running_var, Tensor(), options).shape() == Shape{1, 4, 1, 1});
}

TEST_CASE("batch_norm2d without affine parameters gives zero mean and unit variance per channel", "[batch_norm]") {
    Generator generator(3);
    Tensor x = Tensor::empty({4, 3, 6, 5});
    normal_(x, 2.0, 3.0, generator);
    BatchNormOptions options;
    options.eps = 0.0;
    Tensor y = batch_norm2d(x, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), options);
    for (std::int64_t c = 0; c < 3; ++c) {
        double total = 0.0, squares = 0.0;
        for (std::int64_t n = 0; n < 4; ++n)
            for (std::int64_t h = 0; h < 6; ++h)
                for (std::int64_t w = 0; w < 5; ++w) {
                    total += y.at({n, c, h, w});
                    squares += y.at({n, c, h, w}) * y.at({n, c, h, w});
                }
        CHECK(std::abs(total / 120.0) < 1e-5);
        CHECK(std::abs(squares / 120.0 - 1.0) < 1e-5);
    }
}

TEST_CASE("batch_norm2d training gradients match finite differences", "[batch_norm][gradcheck]") {
    const std::vector<Shape> shapes = {{2, 3, 5, 4}, {1, 5, 3, 3}, {4, 7, 1, 1}, {3, 9, 2, 3}};
    for (const Shape& shape : shapes) {
        INFO("shape " << shape_string(shape));
        Generator generator(11 + shape_numel(shape));
        const std::int64_t channels = shape[1];
        Tensor x = random_input(shape, generator);
        Tensor weight = random_input({channels}, generator, 0.5, 1.5);
        Tensor bias = random_input({channels}, generator);
        // Running statistics ride along (updated on every call) but must not change y or its gradient.
        Tensor running_mean = Tensor::zeros({channels}, DType::Float64);
        Tensor running_var = Tensor::ones({channels}, DType::Float64);
        auto function = [&](const std::vector<Tensor>& inputs) {
            return batch_norm2d(inputs[0], inputs[1], inputs[2], running_mean, running_var, Tensor(), BatchNormOptions{});
        };
        auto result = gradcheck(function, {x, weight, bias});
        INFO(result.report);
        CHECK(result.passed);
        CHECK_FALSE(running_mean.grad().defined());

        // affine=False: only x.
        Tensor x_alone = random_input(shape, generator);
        auto plain = [](const std::vector<Tensor>& inputs) {
            return batch_norm2d(inputs[0], Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), BatchNormOptions{});
        };
        auto plain_result = gradcheck(plain, {x_alone});
        INFO(plain_result.report);
        CHECK(plain_result.passed);
    }
}

TEST_CASE("batch_norm2d eval gradients match finite differences", "[batch_norm][gradcheck]") {
    const std::vector<Shape> shapes = {{2, 3, 5, 4}, {1, 5, 1, 1}, {3, 7, 2, 3}};
    for (const Shape& shape : shapes) {
        INFO("shape " << shape_string(shape));
        Generator generator(23 + shape_numel(shape));
        const std::int64_t channels = shape[1];
        Tensor x = random_input(shape, generator);
        Tensor weight = random_input({channels}, generator);
        Tensor bias = random_input({channels}, generator);
        Tensor running_mean = randn({channels}, DType::Float64, generator);
        Tensor running_var = make_running_var(channels, generator);
        BatchNormOptions options;
        options.training = false;
        auto function = [&](const std::vector<Tensor>& inputs) {
            return batch_norm2d(inputs[0], inputs[1], inputs[2], running_mean, running_var, Tensor(), options);
        };
        auto result = gradcheck(function, {x, weight, bias});
        INFO(result.report);
        CHECK(result.passed);
    }
}

TEST_CASE("batch_norm2d kernels agree with a plain-loop reference", "[batch_norm]") {
    // (4, 64, 16, 16): 32 channels per parallel chunk, so several chunks run.
    const std::vector<Shape> shapes = {{3, 5, 4, 6}, {2, 16, 7, 7}, {8, 3, 1, 1}, {1, 9, 5, 3}, {4, 64, 16, 16}};
    for (const Shape& shape : shapes) {
        for (DType dtype : {DType::Float32, DType::Float64}) {
            compare_with_reference(shape, dtype, true);
            compare_with_reference(shape, dtype, false);
        }
    }
}

TEST_CASE("batch_norm2d only computes the gradients that are needed", "[batch_norm]") {
    Generator generator(5);
    Tensor x = randn({2, 3, 4, 4}, DType::Float32, generator);
    Tensor weight = Tensor::ones({3});
    Tensor bias = Tensor::zeros({3});
    bias.set_requires_grad(true);
    Tensor y = batch_norm2d(x, weight, bias, Tensor(), Tensor(), Tensor(), BatchNormOptions{});
    y.backward(Tensor::ones({2, 3, 4, 4}));
    CHECK_FALSE(x.grad().defined());
    CHECK_FALSE(weight.grad().defined());
    // dbias = sum of dy over (N, H, W) = 32 per channel.
    require_close(bias.grad(), Tensor::full({3}, 32.0), 0, 1e-5);
}

TEST_CASE("batch_norm2d float32 statistics stay accurate with a large mean", "[batch_norm]") {
    // 20000 values per channel around 1e4: a float running sum of them (~2e8) has a spacing of
    // 16, so a float accumulator would get the mean, and so y, badly wrong.
    Generator generator(9);
    Tensor values_around_1e4 = Tensor::empty({2, 2, 100, 100}, DType::Float64);
    uniform_(values_around_1e4, 1e4 - 1.0, 1e4 + 1.0, generator);
    Tensor x = values_around_1e4.to(DType::Float32);
    Tensor y = batch_norm2d(x, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), BatchNormOptions{});
    std::vector<double> values = x.to_double_vector();
    std::vector<double> ones(2, 1.0), zeros(2, 0.0);
    Reference expected = reference_batch_norm(values, ones, zeros, std::vector<double>(values.size(), 0.0), {}, {},
                                              2, 2, 10000, true, 1e-5);
    require_close(y, Tensor::from_vector(expected.y, {2, 2, 100, 100}), 0, 2e-3);
}

TEST_CASE("batch_norm2d handles a non-contiguous input", "[batch_norm]") {
    Generator generator(13);
    Tensor base = randn({2, 3, 5, 4}, DType::Float64, generator);
    Tensor x = base.transpose(2, 3);  // (2, 3, 4, 5), not contiguous
    REQUIRE_FALSE(x.is_contiguous());
    Tensor expected = batch_norm2d(x.contiguous(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), BatchNormOptions{});
    Tensor actual = batch_norm2d(x, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), BatchNormOptions{});
    require_close(actual, expected, 0, 1e-12);
}

TEST_CASE("batch_norm2d rejects bad input with a message naming the op and the shape", "[batch_norm][errors]") {
    Tensor x = Tensor::zeros({2, 3, 4, 4});
    Tensor c3 = Tensor::ones({3});
    BatchNormOptions training;
    BatchNormOptions eval;
    eval.training = false;

    require_error([&] { batch_norm2d(Tensor::zeros({2, 3, 4}), c3, c3, c3, c3, Tensor(), training); },
                  {"batch_norm2d", "[2, 3, 4]", "4 dimensions"});
    require_error([&] { batch_norm2d(x, Tensor::ones({4}), c3, c3, c3, Tensor(), training); },
                  {"batch_norm2d", "weight", "[4]", "[2, 3, 4, 4]"});
    require_error([&] { batch_norm2d(x, c3, Tensor::ones({3, 1}), c3, c3, Tensor(), training); },
                  {"batch_norm2d", "bias", "[3, 1]"});
    require_error([&] { batch_norm2d(x, c3, c3, Tensor::zeros({2}), c3, Tensor(), training); },
                  {"batch_norm2d", "running_mean", "[2]", "[2, 3, 4, 4]"});
    require_error([&] { batch_norm2d(x, c3, c3, c3, Tensor::ones({5}), Tensor(), eval); },
                  {"batch_norm2d", "running_var", "[5]"});
    require_error([&] { batch_norm2d(Tensor::zeros({2, 3, 4, 4}, DType::Int64), Tensor(), Tensor(), Tensor(), Tensor(),
                                     Tensor(), training); },
                  {"batch_norm2d", "int64", "[2, 3, 4, 4]"});
    require_error([&] { batch_norm2d(x, Tensor::ones({3}, DType::Float64), c3, c3, c3, Tensor(), training); },
                  {"batch_norm2d", "float64", "float32"});
    require_error([&] { batch_norm2d(Tensor::zeros({0, 3, 4, 4}), c3, c3, c3, c3, Tensor(), training); },
                  {"batch_norm2d", "empty", "[0, 3, 4, 4]"});
    require_error([&] { batch_norm2d(Tensor::zeros({1, 3, 1, 1}), c3, c3, c3, c3, Tensor(), training); },
                  {"batch_norm2d", "more than 1 value per channel", "[1, 3, 1, 1]"});
    require_error([&] { batch_norm2d(x, c3, c3, Tensor(), Tensor(), Tensor(), eval); },
                  {"batch_norm2d", "running_mean", "[2, 3, 4, 4]"});
    require_error([&] { batch_norm2d(x, c3, c3, c3, c3, Tensor::zeros({1}), training); },
                  {"batch_norm2d", "num_batches_tracked", "int64"});
    require_error([&] { batch_norm2d(x, c3, c3, c3, c3, Tensor::zeros({2}, DType::Int64), training); },
                  {"batch_norm2d", "num_batches_tracked", "[2]"});

    BatchNormOptions negative_eps;
    negative_eps.eps = -1e-5;
    require_error([&] { batch_norm2d(x, c3, c3, c3, c3, Tensor(), negative_eps); }, {"batch_norm2d", "eps"});
    BatchNormOptions big_momentum;
    big_momentum.momentum = 1.5;
    Tensor running_mean = Tensor::full({3}, 7.0);
    require_error([&] { batch_norm2d(x, c3, c3, running_mean, c3, Tensor(), big_momentum); },
                  {"batch_norm2d", "momentum", "1.5"});
    // A rejected call changes nothing.
    CHECK(running_mean.to_double_vector() == std::vector<double>{7.0, 7.0, 7.0});
}
