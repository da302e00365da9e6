// Our ops against PyTorch 1.13 (fixtures from tools/make_fixtures.py; see
// test_pytorch_fixtures.hpp for the tolerances): the fixture catalogue itself, and the small
// ops: relu, add, flatten, sum, mean, sum over a dimension, softmax, log_softmax,
// cross_entropy (with and without label smoothing) and linear. Convolution, batch norm and
// pooling are in test_pytorch_layers.cpp, the ResNet block in test_pytorch_bottleneck.cpp.
//
// Each case runs forward in float64 and float32, compares the output, runs backward with the
// stored grad_output, and compares the gradient of every input.
#include <filesystem>
#include <functional>
#include <set>
#include <string>

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

using UnaryOp = std::function<Tensor(const Fixture&, const Tensor&)>;

// For every fixture of `op`: output = function(input), then the gradient of "input".
void check_unary_op(const std::string& op, const UnaryOp& function) {
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

}  // namespace

TEST_CASE("the PyTorch fixtures are all present, readable and small", "[pytorch]") {
    // Every op a fixture names must be one that some test_pytorch_*.cpp runs, so that a new
    // fixture cannot sit unused.
    const std::set<std::string> tested_ops = {
        "conv2d",     "linear",   "batch_norm2d", "max_pool2d",    "avg_pool2d",  "adaptive_avg_pool2d",
        "global_avg_pool2d", "relu", "add",       "flatten",       "sum",         "mean",
        "sum_dim",    "softmax",  "log_softmax",  "cross_entropy", "bottleneck"};
    std::set<std::string> seen_ops;
    std::uintmax_t total_bytes = 0;
    std::vector<Fixture> fixtures = cudagrad::testing::all_fixtures();
    for (const Fixture& fixture : fixtures) {
        INFO("fixture " << fixture.name);
        CHECK(fixture.text("case") == fixture.name);
        CHECK(tested_ops.count(fixture.text("op")) == 1);
        seen_ops.insert(fixture.text("op"));
        for (const auto& [name, tensor] : fixture.file.tensors) {
            INFO("tensor " << name);
            // float64 throughout: the float32 runs convert, so the answer keeps its precision.
            CHECK((tensor.dtype() == cudagrad::DType::Float64 || name == "labels" ||
                   name.find("num_batches_tracked") != std::string::npos));
        }
        total_bytes += std::filesystem::file_size(std::string(CUDAGRAD_FIXTURE_DIR) + "/" + fixture.name + ".safetensors");
    }
    CHECK(seen_ops == tested_ops);
    CHECK(fixtures.size() >= 34);
    CHECK(total_bytes < 2 * 1024 * 1024);
}

TEST_CASE("relu matches PyTorch", "[pytorch]") {
    check_unary_op("relu", [](const Fixture&, const Tensor& x) { return cudagrad::relu(x); });
}

TEST_CASE("flatten matches PyTorch", "[pytorch]") {
    check_unary_op("flatten", [](const Fixture& f, const Tensor& x) { return cudagrad::flatten(x, f.integer("start_dim")); });
}

TEST_CASE("sum and mean of all elements match PyTorch", "[pytorch]") {
    check_unary_op("sum", [](const Fixture&, const Tensor& x) { return cudagrad::sum(x); });
    check_unary_op("mean", [](const Fixture&, const Tensor& x) { return cudagrad::mean(x); });
}

TEST_CASE("sum over one dimension matches PyTorch", "[pytorch]") {
    check_unary_op("sum_dim", [](const Fixture& f, const Tensor& x) {
        return cudagrad::sum(x, f.integer("dim"), f.flag("keepdim"));
    });
}

TEST_CASE("softmax and log_softmax match PyTorch", "[pytorch]") {
    check_unary_op("softmax", [](const Fixture& f, const Tensor& x) { return cudagrad::softmax(x, f.integer("dim")); });
    check_unary_op("log_softmax",
                   [](const Fixture& f, const Tensor& x) { return cudagrad::log_softmax(x, f.integer("dim")); });
}

TEST_CASE("add matches PyTorch", "[pytorch]") {
    for (const Fixture& fixture : fixtures_for("add")) {
        for (const Precision& precision : precisions()) {
            DYNAMIC_SECTION(fixture.name << " " << precision.name) {
                Tensor a = fresh(fixture.tensor("a"), precision.dtype, true);
                Tensor b = fresh(fixture.tensor("b"), precision.dtype, true);
                Tensor output = cudagrad::add(a, b);
                check_against(output, fixture.tensor("output"), precision, fixture.name + ": output");
                output.backward(fresh(fixture.tensor("grad_output"), precision.dtype));
                check_gradient(fixture, "a", a, precision);
                check_gradient(fixture, "b", b, precision);
            }
        }
    }
}

TEST_CASE("cross_entropy matches PyTorch, with and without label smoothing", "[pytorch]") {
    for (const Fixture& fixture : fixtures_for("cross_entropy")) {
        for (const Precision& precision : precisions()) {
            DYNAMIC_SECTION(fixture.name << " " << precision.name) {
                Tensor logits = fresh(fixture.tensor("logits"), precision.dtype, true);
                const Tensor& labels = fixture.tensor("labels");
                REQUIRE(labels.dtype() == cudagrad::DType::Int64);
                Tensor loss = cudagrad::cross_entropy(logits, labels, fixture.number("label_smoothing"));
                REQUIRE(loss.dim() == 0);
                check_against(loss, fixture.tensor("output"), precision, fixture.name + ": loss");
                loss.backward(fresh(fixture.tensor("grad_output"), precision.dtype));
                check_gradient(fixture, "logits", logits, precision);
            }
        }
    }
}

TEST_CASE("linear matches PyTorch, with and without bias", "[pytorch]") {
    for (const Fixture& fixture : fixtures_for("linear")) {
        for (const Precision& precision : precisions()) {
            DYNAMIC_SECTION(fixture.name << " " << precision.name) {
                const bool has_bias = fixture.flag("bias");
                REQUIRE(fixture.has("bias") == has_bias);
                Tensor input = fresh(fixture.tensor("input"), precision.dtype, true);
                Tensor weight = fresh(fixture.tensor("weight"), precision.dtype, true);
                Tensor bias = has_bias ? fresh(fixture.tensor("bias"), precision.dtype, true) : Tensor();
                Tensor output = cudagrad::linear(input, weight, bias);
                check_against(output, fixture.tensor("output"), precision, fixture.name + ": output");
                output.backward(fresh(fixture.tensor("grad_output"), precision.dtype));
                check_gradient(fixture, "input", input, precision);
                check_gradient(fixture, "weight", weight, precision);
                if (has_bias) check_gradient(fixture, "bias", bias, precision);
            }
        }
    }
}
