// The generator: reproducible streams, state save/restore, and the moments of the
// distributions the initialisers rely on.
#include <cmath>

#include <cudagrad/cudagrad.hpp>

#include "catch.hpp"

using namespace cudagrad;

TEST_CASE("the same seed gives the same stream; state round-trips") {
    Generator a(42), b(42), c(43);
    std::uint64_t first = a.next_u64();
    CHECK(first == b.next_u64());
    CHECK(first != c.next_u64());
    auto saved = a.state();
    double expected = a.normal();
    a.uniform();
    a.set_state(saved);
    CHECK(a.normal() == expected);
    CHECK_THROWS_AS(a.set_state({0, 0, 0, 0}), Error);
}

TEST_CASE("uniform, normal and below have the right moments") {
    Generator generator(7);
    constexpr int samples = 200000;
    double sum = 0, sum_squares = 0, normal_sum = 0, normal_squares = 0;
    std::int64_t counts[3] = {0, 0, 0};
    int outside_unit_interval = 0;
    for (int i = 0; i < samples; ++i) {
        double u = generator.uniform();
        if (u < 0.0 || u >= 1.0) ++outside_unit_interval;
        sum += u;
        sum_squares += u * u;
        double n = generator.normal();
        normal_sum += n;
        normal_squares += n * n;
        ++counts[generator.below(3)];
    }
    CHECK(outside_unit_interval == 0);
    // Standard errors: uniform mean 0.29/sqrt(n) ~ 6.5e-4; use ~5 sigma.
    CHECK(std::abs(sum / samples - 0.5) < 3.5e-3);
    CHECK(std::abs(sum_squares / samples - 1.0 / 3.0) < 3.5e-3);
    CHECK(std::abs(normal_sum / samples) < 1.2e-2);
    CHECK(std::abs(normal_squares / samples - 1.0) < 1.6e-2);
    for (std::int64_t count : counts) CHECK(std::abs(count / double(samples) - 1.0 / 3.0) < 5e-3);
}

TEST_CASE("kaiming normal (fan_out) and the linear default have PyTorch's scales") {
    Generator generator(3);
    Tensor conv_weight = Tensor::empty({64, 32, 3, 3});  // fan_out = 64 * 9 = 576
    kaiming_normal_(conv_weight, FanMode::FanOut, generator);
    double squares = 0;
    for (float value : conv_weight.to_float_vector()) squares += double(value) * value;
    double expected_variance = 2.0 / 576.0;
    CHECK(std::abs(squares / conv_weight.numel() / expected_variance - 1.0) < 0.05);

    Tensor weight = Tensor::empty({10, 400});
    Tensor bias = Tensor::empty({10});
    linear_default_init_(weight, bias, generator);
    double bound = 1.0 / std::sqrt(400.0);
    double largest = 0;
    for (float value : weight.to_float_vector()) largest = std::max(largest, std::abs(double(value)));
    CHECK(largest <= bound);
    CHECK(largest > 0.95 * bound);
    for (float value : bias.to_float_vector()) CHECK(std::abs(value) <= bound);
    CHECK(fan(conv_weight, FanMode::FanIn) == 32 * 9);
}

TEST_CASE("randn with the same seed is reproducible") {
    Generator a(11), b(11);
    CHECK(randn({5, 5}, DType::Float32, a).to_float_vector() == randn({5, 5}, DType::Float32, b).to_float_vector());
}
