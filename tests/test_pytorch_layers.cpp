// conv2d, batch_norm2d and the pooling ops against PyTorch 1.13 (fixtures from
// tools/make_fixtures.py; tolerances in test_pytorch_fixtures.hpp).
//
// Cases: conv2d 3x3 pad 1 with bias, 7x7 stride 2 pad 3, 1x1 stride 2, groups 2 with bias,
// dilation 2 at batch 1, and one whose every option differs between height and width;
// batch norm in training (running statistics updated with the unbiased variance,
// num_batches_tracked incremented) including batch 1 with non-default momentum and eps, and in
// eval (running statistics used and left alone); max pooling 3x3/2 pad 1 and 2x2/2 on an odd
// size, average pooling with and without count_include_pad, adaptive average pooling with
// overlapping windows and with more outputs than inputs, and global average pooling.
// Each case: output in float64 and float32, then every gradient after backward(grad_output).
#include <string>
#include <tuple>

#include "test_pytorch_fixtures.hpp"

namespace {

using cudagrad::Tensor;
using cudagrad::testing::check_against;
using cudagrad::testing::check_gradient;
using cudagrad::testing::Fixture;
using cudagrad::testing::fixtures_for;
using cudagrad::testing::fresh;
using cudagrad::testing::Precision;
using cudagrad::testing::precisions;

// For every fixture of `op`: output = function(input), then the gradient of "input".
template <typename Function> void check_pooling_op(const std::string& op, Function&& function) {
    for (const Fixture& fixture : fixtures_for(op)) {
        for (const Precision& precision : precisions()) {
            DYNAMIC_SECTION(fixture.name << " " << precision.name) {
                Tensor input = fresh(fixture.tensor("input"), precision.dtype, true);
                Tensor output = function(fixture, input);
                check_against(output, fixture.tensor("output"), precision, fixture.name + ": output");
                output.backward(fresh(fixture.tensor("grad_output"), precision.dtype));
                check_gradient(fixture, "input", input, precision);
            }
        }
    }
}

cudagrad::Pool2dOptions pool_options(const Fixture& fixture) {
    cudagrad::Pool2dOptions options;
    std::tie(options.kernel_h, options.kernel_w) = fixture.pair("kernel");
    std::tie(options.stride_h, options.stride_w) = fixture.pair("stride");
    std::tie(options.padding_h, options.padding_w) = fixture.pair("padding");
    if (fixture.file.metadata.count("count_include_pad")) options.count_include_pad = fixture.flag("count_include_pad");
    return options;
}

}  // namespace

TEST_CASE("conv2d matches PyTorch", "[pytorch]") {
    for (const Fixture& fixture : fixtures_for("conv2d")) {
        for (const Precision& precision : precisions()) {
            DYNAMIC_SECTION(fixture.name << " " << precision.name) {
                cudagrad::Conv2dOptions options;
                std::tie(options.stride_h, options.stride_w) = fixture.pair("stride");
                std::tie(options.padding_h, options.padding_w) = fixture.pair("padding");
                std::tie(options.dilation_h, options.dilation_w) = fixture.pair("dilation");
                options.groups = fixture.integer("groups");
                const bool has_bias = fixture.flag("bias");
                REQUIRE(fixture.has("bias") == has_bias);

                Tensor input = fresh(fixture.tensor("input"), precision.dtype, true);
                Tensor weight = fresh(fixture.tensor("weight"), precision.dtype, true);
                Tensor bias = has_bias ? fresh(fixture.tensor("bias"), precision.dtype, true) : Tensor();
                Tensor output = cudagrad::conv2d(input, weight, bias, options);
                check_against(output, fixture.tensor("output"), precision, fixture.name + ": output");
                output.backward(fresh(fixture.tensor("grad_output"), precision.dtype));
                check_gradient(fixture, "input", input, precision);
                check_gradient(fixture, "weight", weight, precision);
                if (has_bias) check_gradient(fixture, "bias", bias, precision);
            }
        }
    }
}

TEST_CASE("batch_norm2d matches PyTorch in training and eval, running statistics included", "[pytorch]") {
    for (const Fixture& fixture : fixtures_for("batch_norm2d")) {
        for (const Precision& precision : precisions()) {
            DYNAMIC_SECTION(fixture.name << " " << precision.name) {
                cudagrad::BatchNormOptions options;
                options.training = fixture.flag("training");
                options.momentum = fixture.number("momentum");
                options.eps = fixture.number("eps");

                Tensor input = fresh(fixture.tensor("input"), precision.dtype, true);
                Tensor weight = fresh(fixture.tensor("weight"), precision.dtype, true);
                Tensor bias = fresh(fixture.tensor("bias"), precision.dtype, true);
                Tensor running_mean = fresh(fixture.tensor("running_mean"), precision.dtype);
                Tensor running_var = fresh(fixture.tensor("running_var"), precision.dtype);
                Tensor num_batches_tracked = fixture.tensor("num_batches_tracked").clone();
                Tensor output = cudagrad::batch_norm2d(input, weight, bias, running_mean, running_var,
                                                       num_batches_tracked, options);
                check_against(output, fixture.tensor("output"), precision, fixture.name + ": output");
                // In eval the "updated" statistics equal the originals: nothing may change.
                check_against(running_mean, fixture.tensor("updated.running_mean"), precision,
                              fixture.name + ": running_mean after the step");
                check_against(running_var, fixture.tensor("updated.running_var"), precision,
                              fixture.name + ": running_var after the step");
                CHECK(num_batches_tracked.to_int64_vector() ==
                      fixture.tensor("updated.num_batches_tracked").to_int64_vector());

                output.backward(fresh(fixture.tensor("grad_output"), precision.dtype));
                check_gradient(fixture, "input", input, precision);
                check_gradient(fixture, "weight", weight, precision);
                check_gradient(fixture, "bias", bias, precision);
            }
        }
    }
}

TEST_CASE("max_pool2d matches PyTorch", "[pytorch]") {
    check_pooling_op("max_pool2d",
                     [](const Fixture& f, const Tensor& x) { return cudagrad::max_pool2d(x, pool_options(f)); });
}

TEST_CASE("avg_pool2d matches PyTorch, with and without count_include_pad", "[pytorch]") {
    check_pooling_op("avg_pool2d",
                     [](const Fixture& f, const Tensor& x) { return cudagrad::avg_pool2d(x, pool_options(f)); });
}

TEST_CASE("adaptive_avg_pool2d matches PyTorch", "[pytorch]") {
    check_pooling_op("adaptive_avg_pool2d", [](const Fixture& f, const Tensor& x) {
        auto [output_h, output_w] = f.pair("output_size");
        return cudagrad::adaptive_avg_pool2d(x, output_h, output_w);
    });
}

TEST_CASE("global_avg_pool2d matches PyTorch", "[pytorch]") {
    check_pooling_op("global_avg_pool2d", [](const Fixture&, const Tensor& x) { return cudagrad::global_avg_pool2d(x); });
}
