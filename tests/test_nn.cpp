// The layer API: torchvision-compatible state names, shapes, initialisation, train/eval, and
// state-dict loading with clear errors.
#include <fstream>
#include <map>
#include <sstream>

#include <cudagrad/cudagrad.hpp>
#include <cudagrad/nn/resnet.hpp>

#include "catch.hpp"

using namespace cudagrad;
using namespace cudagrad::nn;

namespace {
struct ExpectedEntry {
    std::string dtype;
    Shape shape;
};
using ExpectedState = std::map<std::string, ExpectedEntry>;

// Reads tests/fixtures/resnet_state_names.txt (tools/make_resnet_names.py): per model, every
// state_dict entry of torchvision's ResNet with its dtype and shape.
std::map<std::string, ExpectedState> read_torchvision_names() {
    std::ifstream file(std::string(CUDAGRAD_FIXTURE_DIR) + "/resnet_state_names.txt");
    REQUIRE(file.good());
    std::map<std::string, ExpectedState> models;
    std::string line, current;
    while (std::getline(file, line)) {
        std::istringstream words(line);
        std::string name, dtype;
        words >> name >> dtype;
        if (name == "model") {
            std::string classes;
            words >> classes;
            current = dtype + "/" + classes;
            continue;
        }
        ExpectedEntry entry{dtype, {}};
        std::int64_t size;
        while (words >> size) entry.shape.push_back(size);
        models[current][name] = entry;
    }
    return models;
}

void check_matches_torchvision(const ResNet& model, const ExpectedState& expected) {
    StateDict state = model.state_dict();
    CHECK(state.size() == expected.size());
    for (const auto& [name, entry] : expected) {
        INFO(name);
        auto found = state.find(name);
        REQUIRE(found != state.end());
        CHECK(dtype_name(found->second.dtype()) == entry.dtype);
        CHECK(found->second.shape() == entry.shape);
    }
}
}  // namespace

TEST_CASE("ResNet state names, dtypes and shapes are torchvision's") {
    auto models = read_torchvision_names();
    check_matches_torchvision(ResNet({.depth = 18}), models.at("resnet18/1000"));
    check_matches_torchvision(ResNet({.depth = 50}), models.at("resnet50/1000"));
    check_matches_torchvision(ResNet({.depth = 50, .num_classes = 10}), models.at("resnet50/10"));
    check_matches_torchvision(ResNet({.depth = 101}), models.at("resnet101/1000"));
    CHECK(ResNet({.depth = 50}).parameter_count() == 25557032);  // torchvision's resnet50
}

TEST_CASE("initialisation follows torchvision") {
    ResNet model({.depth = 18, .num_classes = 10, .zero_init_residual = true, .seed = 3});
    StateDict state = model.state_dict();
    CHECK(state.at("bn1.weight").to_double_vector() == std::vector<double>(64, 1.0));
    CHECK(state.at("bn1.running_var").to_double_vector() == std::vector<double>(64, 1.0));
    CHECK(state.at("layer1.0.bn2.weight").to_double_vector() == std::vector<double>(64, 0.0));  // zero-init
    CHECK(state.at("layer1.0.bn1.weight").to_double_vector() == std::vector<double>(64, 1.0));
    // Kaiming normal, fan_out: conv1 is 64 x 3 x 7 x 7, std = sqrt(2 / (64 * 49)).
    double squares = 0;
    for (float value : state.at("conv1.weight").to_float_vector()) squares += double(value) * value;
    double variance = squares / state.at("conv1.weight").numel();
    CHECK(std::abs(variance / (2.0 / (64 * 49)) - 1.0) < 0.1);
    // The same seed builds the same weights; another seed does not.
    ResNet same({.depth = 18, .num_classes = 10, .zero_init_residual = true, .seed = 3});
    ResNet other({.depth = 18, .num_classes = 10, .zero_init_residual = true, .seed = 4});
    CHECK(same.state_dict().at("fc.weight").to_float_vector() == state.at("fc.weight").to_float_vector());
    CHECK(other.state_dict().at("fc.weight").to_float_vector() != state.at("fc.weight").to_float_vector());
}

TEST_CASE("forward shapes, small stem, train and eval") {
    ResNet model({.depth = 18, .num_classes = 7, .in_channels = 1, .small_stem = true});
    Tensor x = randn({2, 1, 28, 28});
    Tensor logits = model(x);
    CHECK(logits.shape() == Shape{2, 7});
    CHECK(model.state_dict().at("conv1.weight").shape() == Shape{64, 1, 3, 3});
    // Training mode updated the running statistics and counted the batch.
    CHECK(model.state_dict().at("bn1.num_batches_tracked").item() == 1.0);
    model.eval();
    CHECK_FALSE(model.child("layer1").child("0").is_training());
    Tensor again = model(x);
    CHECK(model.state_dict().at("bn1.num_batches_tracked").item() == 1.0);  // eval does not count
    CHECK(again.shape() == Shape{2, 7});
    CHECK_THROWS_WITH(model(randn({2, 3, 28, 28})), testing::message_contains("expected input (N, 1, H, W)"));
}

TEST_CASE("backward reaches every parameter") {
    ResNet model({.depth = 18, .num_classes = 3, .small_stem = true});
    Tensor loss = cross_entropy(model(randn({2, 3, 16, 16})), Tensor::from_vector(std::vector<std::int64_t>{0, 2}, {2}));
    loss.backward();
    for (auto& [name, parameter] : model.named_parameters()) {
        INFO(name);
        REQUIRE(parameter.grad().defined());
        CHECK(parameter.grad().shape() == parameter.shape());
    }
    model.zero_grad();
    CHECK_FALSE(model.parameters().front().grad().defined());
}

TEST_CASE("load_state_dict copies values and rejects bad state without changing the model") {
    ResNet source({.depth = 18, .num_classes = 4, .seed = 1});
    ResNet target({.depth = 18, .num_classes = 4, .seed = 2});
    target.load_state_dict(source.state_dict());
    CHECK(target.state_dict().at("layer2.0.conv1.weight").to_float_vector() ==
          source.state_dict().at("layer2.0.conv1.weight").to_float_vector());

    ResNet untouched({.depth = 18, .num_classes = 4, .seed = 5});
    std::vector<float> before = untouched.state_dict().at("conv1.weight").to_float_vector();
    StateDict missing = source.state_dict();
    missing.erase("layer3.1.bn2.running_var");
    CHECK_THROWS_WITH(untouched.load_state_dict(missing), testing::message_contains("missing tensor 'layer3.1.bn2.running_var'"));
    StateDict wrong_shape = source.state_dict();
    wrong_shape["fc.weight"] = Tensor::zeros({5, 512});
    CHECK_THROWS_WITH(untouched.load_state_dict(wrong_shape), testing::message_contains("'fc.weight' has shape [5, 512]"));
    StateDict extra = source.state_dict();
    extra["layer5.weight"] = Tensor::zeros({1});
    CHECK_THROWS_WITH(untouched.load_state_dict(extra), testing::message_contains("unexpected tensor 'layer5.weight'"));
    CHECK(untouched.state_dict().at("conv1.weight").to_float_vector() == before);
    // A checkpoint of another depth names the first tensor that does not fit.
    CHECK_THROWS_AS(untouched.load_state_dict(ResNet({.depth = 34, .num_classes = 4}).state_dict()), Error);
}

TEST_CASE("weight decay split: 1-d parameters (BN, biases) are exempt") {
    ResNet model({.depth = 18, .num_classes = 10});
    WeightDecaySplit split = split_for_weight_decay(model);
    CHECK(split.decay.size() + split.no_decay.size() == model.named_parameters().size());
    for (auto& [name, tensor] : split.no_decay) CHECK(tensor.dim() == 1);
    for (auto& [name, tensor] : split.decay) CHECK((name.find("conv") != std::string::npos ||
                                                    name.find("downsample.0") != std::string::npos || name == "fc.weight"));
    CHECK_THROWS_WITH(ResNet({.depth = 42}), testing::message_contains("unsupported depth 42"));
    CHECK(model.describe().find("(layer1): Sequential(") != std::string::npos);
}
