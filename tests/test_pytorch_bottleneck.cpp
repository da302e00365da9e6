// A whole ResNet v1.5 bottleneck block, composed from our ops, against
// torchvision.models.resnet.Bottleneck (fixtures bottleneck_train and bottleneck_eval from
// tools/make_fixtures.py; tolerances in test_pytorch_fixtures.hpp).
//
// The block, in torchvision's order (inplanes 8, planes 4, expansion 4, stride 2, input
// (2, 8, 7, 7) -> output (2, 16, 4, 4); no conv has a bias):
//   out = relu(bn1(conv1 1x1 (x)))
//   out = relu(bn2(conv2 3x3 stride 2 pad 1 (out)))     v1.5: the stride sits on the 3x3 conv
//   out = bn3(conv3 1x1 (out))
//   shortcut = downsample.1(downsample.0 1x1 stride 2 (x))
//   y = relu(out + shortcut)
// x feeds two branches, so its gradient is the sum of both paths: this checks the tape's
// accumulation as well as every op's backward. Checked: the output, the gradient of the input
// and of all 12 parameters, and, in training, the running statistics of all four batch norms.
#include <map>
#include <string>
#include <vector>

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

const std::vector<std::string> parameter_names = {
    "conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias",
    "conv3.weight", "bn3.weight", "bn3.bias", "downsample.0.weight", "downsample.1.weight", "downsample.1.bias"};
const std::vector<std::string> batch_norm_names = {"bn1", "bn2", "bn3", "downsample.1"};
const std::vector<std::string> buffer_suffixes = {".running_mean", ".running_var"};

struct Block {
    std::map<std::string, Tensor> parameters;  // require gradients
    std::map<std::string, Tensor> buffers;     // running statistics, updated in place in training
    cudagrad::BatchNormOptions batch_norm_options;
    std::int64_t stride = 1;

    Tensor batch_norm(const Tensor& x, const std::string& name) {
        return cudagrad::batch_norm2d(x, parameters.at(name + ".weight"), parameters.at(name + ".bias"),
                                      buffers.at(name + ".running_mean"), buffers.at(name + ".running_var"),
                                      buffers.at(name + ".num_batches_tracked"), batch_norm_options);
    }

    Tensor conv(const Tensor& x, const std::string& name, std::int64_t conv_stride, std::int64_t padding) {
        cudagrad::Conv2dOptions options;
        options.stride_h = options.stride_w = conv_stride;
        options.padding_h = options.padding_w = padding;
        return cudagrad::conv2d(x, parameters.at(name), Tensor(), options);
    }

    Tensor forward(const Tensor& x) {
        Tensor out = cudagrad::relu(batch_norm(conv(x, "conv1.weight", 1, 0), "bn1"));
        out = cudagrad::relu(batch_norm(conv(out, "conv2.weight", stride, 1), "bn2"));
        out = batch_norm(conv(out, "conv3.weight", 1, 0), "bn3");
        Tensor shortcut = batch_norm(conv(x, "downsample.0.weight", stride, 0), "downsample.1");
        return cudagrad::relu(cudagrad::add(out, shortcut));
    }
};

void check_bottleneck(const Fixture& fixture, const Precision& precision) {
    Block block;
    block.batch_norm_options.training = fixture.flag("training");
    block.batch_norm_options.momentum = fixture.number("momentum");
    block.batch_norm_options.eps = fixture.number("eps");
    block.stride = fixture.integer("stride");
    for (const std::string& name : parameter_names) {
        block.parameters[name] = fresh(fixture.tensor(name), precision.dtype, true);
    }
    for (const std::string& layer : batch_norm_names) {
        for (const std::string& suffix : buffer_suffixes) {
            block.buffers[layer + suffix] = fresh(fixture.tensor(layer + suffix), precision.dtype);
        }
        block.buffers[layer + ".num_batches_tracked"] = fixture.tensor(layer + ".num_batches_tracked").clone();
    }

    Tensor input = fresh(fixture.tensor("input"), precision.dtype, true);
    Tensor output = block.forward(input);
    REQUIRE(output.shape() == cudagrad::Shape{2, 16, 4, 4});
    check_against(output, fixture.tensor("output"), precision, fixture.name + ": output");

    // In eval the "updated" statistics equal the originals, so this also checks nothing moved.
    for (const std::string& layer : batch_norm_names) {
        for (const std::string& suffix : buffer_suffixes) {
            check_against(block.buffers.at(layer + suffix), fixture.tensor("updated." + layer + suffix), precision,
                          fixture.name + ": " + layer + suffix + " after the step");
        }
        INFO(layer << ".num_batches_tracked");
        CHECK(block.buffers.at(layer + ".num_batches_tracked").to_int64_vector() ==
              fixture.tensor("updated." + layer + ".num_batches_tracked").to_int64_vector());
    }

    output.backward(fresh(fixture.tensor("grad_output"), precision.dtype));
    check_gradient(fixture, "input", input, precision);
    for (const std::string& name : parameter_names) check_gradient(fixture, name, block.parameters.at(name), precision);
}

}  // namespace

TEST_CASE("a ResNet bottleneck block built from our ops matches torchvision's", "[pytorch]") {
    std::vector<Fixture> fixtures = fixtures_for("bottleneck");
    REQUIRE(fixtures.size() == 2);  // train and eval
    for (const Fixture& fixture : fixtures) {
        for (const Precision& precision : precisions()) {
            DYNAMIC_SECTION(fixture.name << " " << precision.name) { check_bottleneck(fixture, precision); }
        }
    }
}
