// Tests of SGD (include/cudagrad/optim.hpp, src/optim/sgd.cpp) and the learning-rate schedules
// (src/optim/schedule.cpp): updates worked out by hand, the fused kernel against a plain loop,
// replays of PyTorch runs recorded by tools/make_optimizer_fixtures.py, checkpoints, bad input.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <cudagrad/cudagrad.hpp>
#include <cudagrad/optim.hpp>
#include <cudagrad/serialize.hpp>

#include "catch.hpp"
#include "compare.hpp"

using namespace cudagrad;
using cudagrad::testing::require_close;

namespace {

// Runs `body`, which must throw a cudagrad::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& body, const std::vector<std::string>& parts) {
    try {
        body();
        FAIL("no exception was thrown");
    } catch (const Error& error) {
        const std::string message = error.what();
        INFO("message: " << message);
        for (const std::string& part : parts) CHECK(message.find(part) != std::string::npos);
    }
}

Tensor parameter(const std::vector<double>& values, DType dtype = DType::Float64) {
    Tensor tensor = Tensor::from_vector(values, {static_cast<std::int64_t>(values.size())}).to(dtype);
    tensor.set_requires_grad(true);
    return tensor;
}

void give_gradient(Tensor& tensor, const std::vector<double>& values) {
    tensor.set_grad(Tensor::from_vector(values, tensor.shape()).to(tensor.dtype()));
}

SGD make_sgd(const std::vector<Tensor>& parameters, SgdOptions options) {
    return SGD({ParameterGroup{parameters, std::nullopt, {}}}, options);
}

void check_values(const Tensor& tensor, const std::vector<double>& expected, double tolerance = 1e-15) {
    const std::vector<double> actual = tensor.to_double_vector();
    REQUIRE(actual.size() == expected.size());
    for (std::size_t i = 0; i < actual.size(); ++i) {
        INFO("element " << i);
        CHECK(std::abs(actual[i] - expected[i]) <= tolerance * (1.0 + std::abs(expected[i])));
    }
}

// The optimizer_*.safetensors fixtures come from tools/make_optimizer_fixtures.py. (Note: the op
// fixture script, tools/make_fixtures.py, deletes fixtures it did not write itself; if these go
// missing after it ran, run the optimizer script again.)
TensorFile load_fixture(const std::string& name) {
    const std::string path = std::string(CUDAGRAD_FIXTURE_DIR) + "/" + name + ".safetensors";
    INFO("missing? regenerate with /usr/bin/python3 tools/make_optimizer_fixtures.py");
    REQUIRE(std::filesystem::exists(path));
    return load_safetensors(path);
}

std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> parts;
    std::stringstream stream(text);
    for (std::string part; std::getline(stream, part, ',');) parts.push_back(part);
    return parts;
}

}  // namespace

TEST_CASE("SGD without momentum: w -= lr * (g + weight_decay * w)", "[optim]") {
    for (DType dtype : {DType::Float64, DType::Float32}) {
        Tensor w = parameter({1.0, 2.0, -3.0}, dtype);
        SGD sgd = make_sgd({w}, {.lr = 0.1});
        give_gradient(w, {0.5, -1.0, 2.0});
        sgd.step();
        check_values(w, {0.95, 2.1, -3.2}, dtype == DType::Float32 ? 1e-7 : 1e-15);
        CHECK_FALSE(sgd.momentum_buffer(0, 0).defined());
        CHECK(sgd.step_count() == 1);

        Tensor v = parameter({1.0, -2.0}, dtype);
        SGD decayed = make_sgd({v}, {.lr = 0.5, .weight_decay = 0.1});
        give_gradient(v, {1.0, 1.0});
        decayed.step();  // d = (1.1, 0.8)
        check_values(v, {1.0 - 0.55, -2.0 - 0.4}, dtype == DType::Float32 ? 1e-7 : 1e-15);
    }
}

TEST_CASE("SGD momentum, dampening and Nesterov, worked by hand over two steps", "[optim]") {
    // Step 1: g = (1, -2); step 2: g = (0.5, 1); lr 0.1, momentum 0.9, w0 = (1, 1).
    SECTION("momentum: the first buffer is the gradient itself") {
        Tensor w = parameter({1.0, 1.0});
        SGD sgd = make_sgd({w}, {.lr = 0.1, .momentum = 0.9});
        give_gradient(w, {1.0, -2.0});
        sgd.step();
        check_values(sgd.momentum_buffer(0, 0), {1.0, -2.0});
        check_values(w, {0.9, 1.2});
        give_gradient(w, {0.5, 1.0});
        sgd.step();  // buffer = 0.9 * (1, -2) + (0.5, 1) = (1.4, -0.8)
        check_values(sgd.momentum_buffer(0, 0), {1.4, -0.8});
        check_values(w, {0.9 - 0.14, 1.2 + 0.08});
    }
    SECTION("dampening scales the new gradient from the second step on") {
        Tensor w = parameter({1.0, 1.0});
        SGD sgd = make_sgd({w}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
        give_gradient(w, {1.0, -2.0});
        sgd.step();
        check_values(sgd.momentum_buffer(0, 0), {1.0, -2.0});  // not dampened on the first step
        give_gradient(w, {0.5, 1.0});
        sgd.step();  // buffer = 0.9 * (1, -2) + 0.5 * (0.5, 1) = (1.15, -1.3)
        check_values(sgd.momentum_buffer(0, 0), {1.15, -1.3});
        check_values(w, {0.9 - 0.115, 1.2 + 0.13});
    }
    SECTION("Nesterov steps along g + momentum * buffer") {
        Tensor w = parameter({1.0, 1.0});
        SGD sgd = make_sgd({w}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
        give_gradient(w, {1.0, -2.0});
        sgd.step();  // buffer = (1, -2); d = (1.9, -3.8)
        check_values(w, {1.0 - 0.19, 1.0 + 0.38});
        give_gradient(w, {0.5, 1.0});
        sgd.step();  // buffer = (1.4, -0.8); d = (0.5 + 1.26, 1 - 0.72) = (1.76, 0.28)
        check_values(sgd.momentum_buffer(0, 0), {1.4, -0.8});
        check_values(w, {0.81 - 0.176, 1.38 - 0.028});
    }
    SECTION("weight decay enters the buffer") {
        Tensor w = parameter({2.0});
        SGD sgd = make_sgd({w}, {.lr = 1.0, .momentum = 0.5, .weight_decay = 0.25});
        give_gradient(w, {1.0});
        sgd.step();  // d = 1 + 0.5 = 1.5 = buffer; w = 0.5
        check_values(sgd.momentum_buffer(0, 0), {1.5});
        check_values(w, {0.5});
    }
}

TEST_CASE("SGD parameter groups: weight decay per group, names, skipped parameters", "[optim]") {
    Tensor weight = parameter({1.0, 2.0});
    Tensor bias = parameter({1.0});
    Tensor frozen = parameter({5.0});
    SGD sgd({ParameterGroup{{weight}, std::nullopt, {"fc.weight"}},
             ParameterGroup{{bias, frozen}, 0.0, {"fc.bias", "frozen"}}},
            {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.5});
    CHECK(sgd.weight_decay(0) == 0.5);
    CHECK(sgd.weight_decay(1) == 0.0);
    CHECK(sgd.parameter_key(1, 1) == "frozen");
    give_gradient(weight, {0.0, 0.0});
    give_gradient(bias, {0.0});
    sgd.step();
    check_values(weight, {1.0 - 0.05, 2.0 - 0.1});  // decayed
    check_values(bias, {1.0});                      // the group opted out
    check_values(frozen, {5.0});                    // no gradient: skipped, no buffer
    CHECK_FALSE(sgd.momentum_buffer(1, 1).defined());

    // The handles the modules hold are the ones updated, storage and all.
    const void* storage_before = weight.raw_data();
    give_gradient(frozen, {1.0});
    sgd.step();
    CHECK(sgd.groups()[0].parameters[0].same_as(weight));
    CHECK(weight.raw_data() == storage_before);
    check_values(frozen, {4.9});  // its first step: the buffer starts now
    check_values(sgd.momentum_buffer(1, 1), {1.0});

    sgd.zero_grad(false);
    check_values(frozen.grad(), {0.0});
    sgd.zero_grad();
    CHECK_FALSE(frozen.grad().defined());
    sgd.step();  // nothing has a gradient: nothing moves, but the step is counted
    check_values(frozen, {4.9});
    CHECK(sgd.step_count() == 3);
}

TEST_CASE("SGD fused parallel update matches a plain loop, float32 and float64", "[optim]") {
    Generator generator(7);
    const std::vector<Shape> shapes = {{1}, {3, 5}, {64, 33, 3, 3}, {1 << 17}};  // the last spans threads
    for (DType dtype : {DType::Float32, DType::Float64}) {
        for (bool nesterov : {false, true}) {
            for (const Shape& shape : shapes) {
                INFO(dtype_name(dtype) << " nesterov " << nesterov << " shape " << shape_string(shape));
                Tensor w = randn(shape, dtype, generator);
                const Tensor w0 = w.clone();
                SgdOptions options{.lr = 0.05, .momentum = 0.9, .dampening = nesterov ? 0.0 : 0.2,
                                   .weight_decay = 1e-3, .nesterov = nesterov};
                SGD sgd = make_sgd({w}, options);
                std::vector<double> weights = w0.to_double_vector(), buffer(weights.size());
                for (int step = 0; step < 3; ++step) {
                    const Tensor gradient = randn(shape, dtype, generator);
                    w.set_grad(gradient);
                    sgd.step();
                    const std::vector<double> g = gradient.to_double_vector();
                    for (std::size_t i = 0; i < weights.size(); ++i) {
                        double d = g[i] + options.weight_decay * weights[i];
                        buffer[i] = step == 0 ? d : options.momentum * buffer[i] + (1 - options.dampening) * d;
                        d = nesterov ? d + options.momentum * buffer[i] : buffer[i];
                        weights[i] -= options.lr * d;
                    }
                }
                const double tolerance = dtype == DType::Float32 ? 1e-5 : 1e-13;
                require_close(w, Tensor::from_vector(weights, shape), tolerance, tolerance);
                require_close(sgd.momentum_buffer(0, 0), Tensor::from_vector(buffer, shape), tolerance, tolerance);
            }
        }
    }
}

TEST_CASE("SGD updates a strided parameter in its own storage", "[optim]") {
    Tensor base = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor view = base.transpose(0, 1);  // (3, 2), not contiguous
    REQUIRE_FALSE(view.is_contiguous());
    SGD sgd = make_sgd({view}, {.lr = 1.0});
    view.set_grad(Tensor::from_vector(std::vector<double>{1, 10, 2, 20, 3, 30}, {3, 2}));
    sgd.step();
    check_values(base, {0, 0, 0, -6, -15, -24});  // base[i][j] -= grad[j][i]
}

// Replays a PyTorch run: same initial weights, gradients and learning rates; compares every step.
void replay_pytorch_fixture(const std::string& name, DType dtype) {
    INFO("fixture " << name << " in " << dtype_name(dtype));
    const TensorFile file = load_fixture(name);
    const auto& meta = file.metadata;
    const auto& tensors = file.tensors;
    SgdOptions options;
    options.momentum = std::stod(meta.at("momentum"));
    options.dampening = std::stod(meta.at("dampening"));
    options.nesterov = meta.at("nesterov") == "true";
    const std::vector<std::string> decay_names = split_commas(meta.at("decay_group"));
    const std::vector<std::string> other_names = split_commas(meta.at("no_decay_group"));
    std::map<std::string, Tensor> parameters;
    ParameterGroup decay{{}, std::stod(meta.at("weight_decay")), decay_names};
    ParameterGroup other{{}, 0.0, other_names};
    auto initial = [&](const std::string& n) { return parameters[n] = tensors.at("initial." + n).to(dtype).clone(); };
    for (const std::string& n : decay_names) decay.parameters.push_back(initial(n));
    for (const std::string& n : other_names) other.parameters.push_back(initial(n));
    SGD sgd({decay, other}, options);

    const double rtol = dtype == DType::Float64 ? 1e-12 : 1e-5;
    const double atol = dtype == DType::Float64 ? 1e-14 : 1e-6;
    const std::vector<double> lrs = tensors.at("lr").to_double_vector();
    REQUIRE(lrs.size() == std::stoul(meta.at("steps")));
    for (std::size_t step = 0; step < lrs.size(); ++step) {
        INFO("step " << step);
        sgd.set_lr(lrs[step]);
        for (auto& [key, tensor] : parameters) {
            const auto gradient = tensors.find("grad." + std::to_string(step) + "." + key);
            if (gradient == tensors.end()) tensor.zero_grad();
            else tensor.set_grad(gradient->second.to(dtype));
        }
        sgd.step();
        for (auto& [key, tensor] : parameters) {
            INFO("parameter " << key);
            require_close(tensor, tensors.at("after." + std::to_string(step) + "." + key), rtol, atol);
        }
    }
    const std::map<std::string, Tensor> state = sgd.state_dict();
    for (const auto& [key, tensor] : parameters) {
        INFO("momentum buffer of " << key);
        const auto expected = tensors.find("momentum_buffer." + key);
        const auto actual = state.find("momentum_buffer." + key);
        REQUIRE((expected == tensors.end()) == (actual == state.end()));
        if (actual != state.end()) require_close(actual->second, expected->second, rtol, atol);
    }
}

TEST_CASE("SGD replays PyTorch's torch.optim.SGD runs", "[optim][fixture]") {
    for (const char* name : {"optimizer_sgd_momentum", "optimizer_sgd_nesterov", "optimizer_sgd_dampening",
                             "optimizer_sgd_plain"}) {
        replay_pytorch_fixture(name, DType::Float64);
        replay_pytorch_fixture(name, DType::Float32);
    }
    // The momentum case took its learning rates from MultiStepLR(0.1, [2, 4], 0.1).
    const TensorFile file = load_fixture("optimizer_sgd_momentum");
    const std::vector<double> lrs = file.tensors.at("lr").to_double_vector();
    const MultiStepLR schedule(0.1, {2, 4}, 0.1);
    for (std::size_t step = 0; step < lrs.size(); ++step)
        CHECK(std::abs(schedule.lr_at(static_cast<std::int64_t>(step)) - lrs[step]) <= 1e-12 * lrs[step]);
}

TEST_CASE("SGD state_dict round trip through a safetensors file", "[optim]") {
    auto make = [](std::vector<Tensor> parameters) {
        return SGD({ParameterGroup{{parameters[0]}, std::nullopt, {"a"}},
                    ParameterGroup{{parameters[1], parameters[2]}, 0.0, {"b", "never"}}},
                   {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .weight_decay = 1e-2});
    };
    Generator generator(3);
    std::vector<Tensor> first = {randn({4, 3}, DType::Float64, generator), randn({5}, DType::Float64, generator),
                                 randn({2}, DType::Float64, generator)};
    SGD original = make(first);
    for (int step = 0; step < 2; ++step) {
        first[0].set_grad(randn({4, 3}, DType::Float64, generator));
        first[1].set_grad(randn({5}, DType::Float64, generator));
        original.step();  // "never" gets no gradient: no buffer
    }
    original.set_lr(0.03);
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("cudagrad_test_optim_" + std::to_string(::getpid()) + ".safetensors"))
                                 .string();
    save_safetensors(path, original.state_dict());
    const TensorFile saved = load_safetensors(path);
    std::remove(path.c_str());
    CHECK(saved.tensors.count("momentum_buffer.never") == 0);

    std::vector<Tensor> second = {first[0].clone(), first[1].clone(), first[2].clone()};
    SGD restored = make(second);
    restored.load_state_dict(saved.tensors);
    CHECK(restored.step_count() == 2);
    CHECK(restored.lr() == 0.03);
    // From here both must move identically, including "never"'s first step.
    for (int step = 0; step < 2; ++step) {
        for (std::size_t i = 0; i < first.size(); ++i) {
            const Tensor gradient = randn(first[i].shape(), DType::Float64, generator);
            first[i].set_grad(gradient);
            second[i].set_grad(gradient.clone());
        }
        original.step();
        restored.step();
    }
    for (std::size_t i = 0; i < first.size(); ++i) require_close(second[i], first[i], 0.0, 0.0);
    require_close(restored.momentum_buffer(1, 1), original.momentum_buffer(1, 1), 0.0, 0.0);

    // Stepping after state_dict() does not change the saved copy.
    const std::map<std::string, Tensor> snapshot = original.state_dict();
    const Tensor before = snapshot.at("momentum_buffer.a").clone();
    original.step();
    require_close(snapshot.at("momentum_buffer.a"), before, 0.0, 0.0);
}

TEST_CASE("SGD load_state_dict rejects a state that does not fit, and changes nothing", "[optim]") {
    Tensor a = parameter({1.0, 2.0});
    Tensor b = parameter({3.0});
    SGD sgd({ParameterGroup{{a, b}, std::nullopt, {"a", "b"}}}, {.lr = 0.1, .momentum = 0.9});
    give_gradient(a, {1.0, 1.0});
    give_gradient(b, {1.0});
    sgd.step();
    const std::map<std::string, Tensor> good = sgd.state_dict();
    const Tensor buffer_before = sgd.momentum_buffer(0, 0).clone();

    auto without = [&](const std::string& key) { auto state = good; state.erase(key); return state; };
    auto with = [&](const std::string& key, const Tensor& tensor) {
        auto state = good;
        state[key] = tensor;
        return state;
    };
    expect_error([&] { sgd.load_state_dict(without("momentum_buffer.b")); }, {"SGD", "momentum_buffer.b"});
    expect_error([&] { sgd.load_state_dict(without("step")); }, {"SGD", "'step'"});
    expect_error([&] { sgd.load_state_dict(with("momentum_buffer.a", Tensor::zeros({3}, DType::Float64))); },
                 {"SGD", "momentum_buffer.a", "[3]", "[2]"});
    expect_error([&] { sgd.load_state_dict(with("momentum_buffer.c", Tensor::zeros({1}, DType::Float64))); },
                 {"SGD", "unexpected", "momentum_buffer.c"});
    expect_error([&] { sgd.load_state_dict(with("momentum_buffer_present", Tensor::ones({3}, DType::Int64))); },
                 {"SGD", "momentum_buffer_present", "[2]"});
    expect_error([&] { sgd.load_state_dict(with("step", Tensor::full({1}, -1.0, DType::Int64))); }, {"SGD", "step"});
    expect_error([&] { sgd.load_state_dict(with("lr", Tensor::full({1}, 0.1, DType::Float32))); },
                 {"SGD", "'lr'", "float64"});
    // A failed load altered nothing; a float32 buffer converts to the parameter's float64.
    require_close(sgd.momentum_buffer(0, 0), buffer_before, 0.0, 0.0);
    CHECK(sgd.step_count() == 1);
    sgd.load_state_dict(with("momentum_buffer.a", Tensor::full({2}, 0.5, DType::Float32)));
    CHECK(sgd.momentum_buffer(0, 0).dtype() == DType::Float64);
    check_values(sgd.momentum_buffer(0, 0), {0.5, 0.5});
}

TEST_CASE("SGD rejects bad hyperparameters and parameters", "[optim]") {
    Tensor w = parameter({1.0, 2.0});
    auto build = [&](SgdOptions options) { make_sgd({w}, options); };
    expect_error([&] { build({.lr = -0.1}); }, {"SGD", "lr", "-0.1"});
    expect_error([&] { build({.lr = NAN}); }, {"SGD", "lr"});
    expect_error([&] { build({.momentum = -0.9}); }, {"SGD", "momentum", "-0.9"});
    expect_error([&] { build({.dampening = -1.0}); }, {"SGD", "dampening"});
    expect_error([&] { build({.weight_decay = -1e-4}); }, {"SGD", "weight_decay", "-0.0001"});
    expect_error([&] { build({.momentum = 0.0, .nesterov = true}); }, {"SGD", "Nesterov", "momentum 0"});
    expect_error([&] { build({.momentum = 0.9, .dampening = 0.1, .nesterov = true}); },
                 {"SGD", "Nesterov", "dampening 0.1"});
    expect_error([&] { SGD({ParameterGroup{{w}, -1.0, {}}}, {}); }, {"SGD", "weight_decay of group 0", "-1"});
    expect_error([&] { SGD({ParameterGroup{{}, std::nullopt, {}}}, {}); }, {"SGD", "empty parameter list"});
    expect_error([&] { SGD({ParameterGroup{{w}, std::nullopt, {}}, ParameterGroup{{w}, 0.0, {}}}, {}); },
                 {"SGD", "'1.0'", "more than once"});
    expect_error([&] { SGD({ParameterGroup{{w}, std::nullopt, {"x", "y"}}}, {}); }, {"SGD", "1 parameters", "2 names"});
    Tensor v = parameter({1.0});
    expect_error([&] { SGD({ParameterGroup{{w, v}, std::nullopt, {"x", "x"}}}, {}); }, {"SGD", "'x'"});
    expect_error([&] { make_sgd({Tensor::zeros({3}, DType::Int64)}, {}); }, {"SGD", "int64", "[3]"});
    expect_error([&] { make_sgd({Tensor()}, {}); }, {"SGD", "undefined"});
    SGD sgd = make_sgd({w}, {});
    expect_error([&] { sgd.set_lr(-1.0); }, {"SGD", "lr", "-1"});

    // A gradient of the wrong shape (set behind set_grad's back) fails the whole step first.
    Tensor bad = parameter({1.0, 2.0, 3.0});
    SGD two({ParameterGroup{{w, bad}, std::nullopt, {"good", "bad"}}}, {.lr = 0.1});
    give_gradient(w, {1.0, 1.0});
    bad.impl().grad = Tensor::ones({2, 2}, DType::Float64).impl_ptr();
    expect_error([&] { two.step(); }, {"SGD", "'bad'", "[2, 2]", "[3]"});
    bad.impl().grad = Tensor::ones({3}, DType::Float32).impl_ptr();
    expect_error([&] { two.step(); }, {"SGD", "'bad'", "float32", "float64"});
    check_values(w, {1.0, 2.0});  // the valid parameter was not touched
    CHECK(two.step_count() == 0);

    // An empty parameter is allowed and is a no-op, as in PyTorch.
    Tensor empty = Tensor::zeros({0, 4}, DType::Float64);
    SGD with_empty = make_sgd({empty}, {.momentum = 0.9});
    empty.set_grad(Tensor::zeros({0, 4}, DType::Float64));
    with_empty.step();
    CHECK(with_empty.step_count() == 1);
}

TEST_CASE("Schedules: hand-computed values and descriptions", "[optim][schedule]") {
    const StepLR step(0.1, 3, 0.5);
    CHECK(step.lr_at(0) == 0.1);
    CHECK(step.lr_at(2) == 0.1);
    CHECK(step.lr_at(3) == 0.05);
    CHECK(step.lr_at(6) == 0.025);
    CHECK(step.describe() == "StepLR(base_lr=0.1, step_size=3, gamma=0.5)");

    const MultiStepLR multi(1.0, {30, 10, 10}, 0.1);  // unsorted, one milestone twice
    CHECK(multi.lr_at(9) == 1.0);
    CHECK(std::abs(multi.lr_at(10) - 0.01) < 1e-17);
    CHECK(std::abs(multi.lr_at(30) - 0.001) < 1e-18);
    CHECK(multi.describe() == "MultiStepLR(base_lr=1, milestones=[10, 10, 30], gamma=0.1)");

    const CosineAnnealingLR cosine(0.1, 100, 0.001);
    CHECK(cosine.lr_at(0) == 0.1);
    CHECK(std::abs(cosine.lr_at(50) - 0.0505) < 1e-15);
    CHECK(std::abs(cosine.lr_at(100) - 0.001) < 1e-15);

    const WarmupCosine warm(0.2, 10, 110, 0.002, 0.1);
    CHECK(std::abs(warm.lr_at(0) - 0.02) < 1e-15);
    CHECK(std::abs(warm.lr_at(5) - 0.11) < 1e-15);
    CHECK(warm.lr_at(10) == 0.2);
    CHECK(std::abs(warm.lr_at(60) - 0.101) < 1e-15);
    CHECK(warm.lr_at(110) == 0.002);
    CHECK(warm.lr_at(500) == 0.002);  // stays at the floor, unlike CosineAnnealingLR
    CHECK(WarmupCosine(0.2, 0, 10, 0.0, 0.5).lr_at(0) == 0.2);  // no warm-up

    const OneCycleLR cycle(0.1, 50);  // phase 1 ends at step 0.3 * 50 - 1 = 14
    CHECK(std::abs(cycle.lr_at(0) - 0.004) < 1e-17);
    CHECK(std::abs(cycle.lr_at(14) - 0.1) < 1e-17);
    CHECK(std::abs(cycle.lr_at(49) - 0.1 / 25 / 1e4) < 1e-20);
    CHECK(cycle.describe().find("OneCycleLR(max_lr=0.1, total_steps=50, pct_start=0.3") == 0);
}

TEST_CASE("Schedules match PyTorch's schedulers step by step", "[optim][schedule][fixture]") {
    const TensorFile file = load_fixture("optimizer_schedules");
    const StepLR step(0.1, 7, 0.5);
    const MultiStepLR multi(0.1, {10, 25, 25, 40}, 0.3);
    const CosineAnnealingLR cosine(0.1, 30, 0.001);
    const OneCycleLR cycle(0.1, 50);
    const OneCycleLR three_phase(0.4, 50, 0.25, 10.0, 100.0, true);
    const WarmupCosine warm(0.1, 5, 50, 0.001, 0.1);
    const std::vector<std::pair<std::string, const LrSchedule*>> schedules = {
        {"StepLR", &step}, {"MultiStepLR", &multi}, {"CosineAnnealingLR", &cosine},
        {"OneCycleLR", &cycle}, {"OneCycleLR_three_phase", &three_phase}, {"WarmupCosine", &warm}};
    for (const auto& [name, schedule] : schedules) {
        const std::vector<double> expected = file.tensors.at(name).to_double_vector();
        REQUIRE(expected.size() == 50);
        for (std::size_t i = 0; i < expected.size(); ++i) {
            INFO(schedule->describe() << " at step " << i << ": PyTorch " << expected[i]);
            CHECK(std::abs(schedule->lr_at(static_cast<std::int64_t>(i)) - expected[i]) <= 1e-12 * expected[i]);
        }
    }
}

TEST_CASE("Schedules reject bad arguments", "[optim][schedule]") {
    expect_error([] { StepLR(0.1, 0); }, {"StepLR", "step_size", "0"});
    expect_error([] { StepLR(-0.1, 3); }, {"StepLR", "base_lr", "-0.1"});
    expect_error([] { StepLR(0.1, 3).lr_at(-1); }, {"StepLR", "step", "-1"});
    expect_error([] { MultiStepLR(0.1, {5, -2}); }, {"MultiStepLR", "milestones", "-2"});
    expect_error([] { MultiStepLR(0.1, {5}, NAN); }, {"MultiStepLR", "gamma"});
    expect_error([] { CosineAnnealingLR(0.1, 0); }, {"CosineAnnealingLR", "total_steps", "0"});
    expect_error([] { CosineAnnealingLR(0.1, 10, -1.0); }, {"CosineAnnealingLR", "min_lr", "-1"});
    expect_error([] { WarmupCosine(0.1, 10, 10); }, {"WarmupCosine", "total_steps (10)", "warmup_steps (10)"});
    expect_error([] { WarmupCosine(0.1, -1, 10); }, {"WarmupCosine", "warmup_steps", "-1"});
    expect_error([] { WarmupCosine(0.1, 1, 10, 0.0, 1.5); }, {"WarmupCosine", "warmup_start_factor", "1.5"});
    expect_error([] { OneCycleLR(0.1, 0); }, {"OneCycleLR", "total_steps", "0"});
    expect_error([] { OneCycleLR(0.1, 50, 0.0); }, {"OneCycleLR", "pct_start", "(0, 1)"});
    expect_error([] { OneCycleLR(0.1, 50, 1.0); }, {"OneCycleLR", "pct_start", "1"});
    expect_error([] { OneCycleLR(0.1, 4, 0.25); }, {"OneCycleLR", "warm-up phase is empty"});
    expect_error([] { OneCycleLR(0.1, 50, 0.3, 0.0); }, {"OneCycleLR", "div_factor"});
    expect_error([] { OneCycleLR(0.1, 50, 0.6, 25.0, 1e4, true); }, {"OneCycleLR", "three_phase"});
    expect_error([] { OneCycleLR(0.1, 50).lr_at(51); }, {"OneCycleLR", "51", "total_steps 50"});
}
