// End-to-end GPU tests: whole models through the public API, on the GPU against the CPU. They
// exercise every GPU op a training step uses (conv2d, batch norm, relu, pooling, add, linear,
// cross-entropy, SGD, gradient accumulation, copies), so a failure here with every per-op test
// passing points at how the ops meet: layouts, devices, the stream, the allocator.
//
//   1. ResNet-50 (10 classes, standard stem, batch 2 at 64x64): one training step from the same
//      weights on both devices. Logits (rtol = atol = 1e-3), loss, every parameter gradient by
//      relative norm ||g_gpu - g_cpu|| / ||g_cpu|| <= 1e-3 per tensor, the running statistics
//      and the weights after an SGD-momentum step. Float32 on both devices, so what differs is the
//      order of the additions: cuDNN's convolution algorithms (Winograd, FFT, implicit GEMM with
//      split reductions) sum in other orders than the CPU's im2col GEMM; at ~1e-6 relative per
//      layer through ~50 layers and back that stays far below 1e-3, while an index error, a
//      missed term or a wrong formula in any layer moves some gradient by far more.
//      Once more in TF32 math mode (tolerances explained at that test).
//   2. A short training run: a small conv/bn/relu/pool/linear network, 20 SGD-momentum steps on
//      the same batches from the same weights on both devices: the loss curves agree within 2%
//      per step, and the loss falls.
//   3. The allocator: after two warm-up steps, training steps make no new cudaMalloc, and the
//      memory statistics are consistent.
//   4. A CPU tensor into a GPU model: an error naming both devices.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"
#include "compare.hpp"
#include "cuda_test_support.hpp"
#include "test_support.hpp"

using namespace cudagrad;
using cudagrad::testing::gpu;
using cudagrad::testing::random_cpu;
using cudagrad::testing::require_close;
using cudagrad::testing::require_error;

namespace {

// ||actual - expected|| / ||expected||; the plain norm of the difference when expected is zero.
// NaN anywhere gives NaN, which fails every "<=" check.
double relative_norm_error(const Tensor& actual, const Tensor& expected) {
    const std::vector<double> a = actual.to_double_vector(), e = expected.to_double_vector();
    if (a.size() != e.size()) return INFINITY;
    double difference = 0.0, reference = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        difference += (a[i] - e[i]) * (a[i] - e[i]);
        reference += e[i] * e[i];
    }
    return reference > 0.0 ? std::sqrt(difference / reference) : std::sqrt(difference);
}

struct MathModeGuard {
    MathMode previous = math_mode();
    ~MathModeGuard() { set_math_mode(previous); }
};

// Compares tensor lists pairwise by relative norm; collects the offenders and the worst error.
struct NormReport {
    double worst = 0.0;
    std::string worst_name, failures;
    void add(const std::string& name, double error, double tolerance) {
        if (!(error <= tolerance)) failures += "  " + name + ": " + std::to_string(error) + "\n";
        if (!(error <= worst)) {  // NaN counts as worst
            worst = error;
            worst_name = name;
        }
    }
};

struct StepTolerances {
    double logits;      // rtol and atol, elementwise
    double loss;        // relative
    double gradient;    // relative norm, per tensor
    double statistics;  // relative norm, running mean and variance
    double weights;     // relative norm, after the SGD step
};

SgdOptions sgd_options() {
    SgdOptions options;
    options.lr = 0.05;
    options.momentum = 0.9;
    options.weight_decay = 1e-4;
    return options;
}

void check_resnet50_step(const StepTolerances& tolerance, const char* label) {
    nn::ResNetConfig config;
    config.depth = 50;
    config.num_classes = 10;
    config.seed = 2024;
    nn::ResNet cpu_model(config);
    config.seed = 9;  // different initial weights, replaced by the CPU model's below
    nn::ResNet gpu_model(config);
    gpu_model.load_state_dict(cpu_model.state_dict());
    gpu_model.to(gpu());

    const Tensor images = random_cpu({2, 3, 64, 64}, 5);
    const Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{3, 9}, {2});
    Tensor logits = cpu_model(images);
    Tensor loss = cross_entropy(logits, labels);
    loss.backward();
    Tensor gpu_logits = gpu_model(images.to(gpu()));
    Tensor gpu_loss = cross_entropy(gpu_logits, labels.to(gpu()));
    gpu_loss.backward();
    REQUIRE(gpu_logits.device() == gpu());
    REQUIRE(gpu_loss.device() == gpu());

    const double logits_error = relative_norm_error(gpu_logits, logits);
    const double loss_error = std::abs(gpu_loss.item() - loss.item()) / std::abs(loss.item());
    NormReport gradients, statistics, weights;
    const nn::NamedTensors cpu_parameters = cpu_model.named_parameters();
    const nn::NamedTensors gpu_parameters = gpu_model.named_parameters();
    REQUIRE(cpu_parameters.size() == gpu_parameters.size());
    for (std::size_t i = 0; i < cpu_parameters.size(); ++i) {
        const auto& [name, parameter] = cpu_parameters[i];
        INFO("parameter " << name);
        REQUIRE(gpu_parameters[i].first == name);
        const Tensor gpu_gradient = gpu_parameters[i].second.grad();
        REQUIRE(gpu_gradient.defined());
        REQUIRE(gpu_gradient.device() == gpu());
        gradients.add(name, relative_norm_error(gpu_gradient, parameter.grad()), tolerance.gradient);
    }
    const nn::NamedTensors cpu_buffers = cpu_model.named_buffers(), gpu_buffers = gpu_model.named_buffers();
    REQUIRE(cpu_buffers.size() == gpu_buffers.size());
    for (std::size_t i = 0; i < cpu_buffers.size(); ++i) {
        const auto& [name, buffer] = cpu_buffers[i];
        if (buffer.dtype() == DType::Int64) {  // num_batches_tracked: exactly one step
            CHECK(gpu_buffers[i].second.to_int64_vector() == buffer.to_int64_vector());
            continue;
        }
        statistics.add(name, relative_norm_error(gpu_buffers[i].second, buffer), tolerance.statistics);
    }

    SGD cpu_optimizer({named_parameter_group(cpu_parameters)}, sgd_options());
    SGD gpu_optimizer({named_parameter_group(gpu_parameters)}, sgd_options());
    cpu_optimizer.step();
    gpu_optimizer.step();
    for (std::size_t i = 0; i < cpu_parameters.size(); ++i) {
        weights.add(cpu_parameters[i].first, relative_norm_error(gpu_parameters[i].second, cpu_parameters[i].second),
                    tolerance.weights);
    }

    // On the GPU machine's log: how much room each tolerance has.
    std::printf("resnet50 step (%s): logits %.2e, loss %.2e, worst gradient %.2e (%s), worst statistic %.2e (%s), "
                "worst weight %.2e (%s)\n",
                label, logits_error, loss_error, gradients.worst, gradients.worst_name.c_str(), statistics.worst,
                statistics.worst_name.c_str(), weights.worst, weights.worst_name.c_str());
    require_close(gpu_logits, logits, tolerance.logits, tolerance.logits);
    CHECK(loss_error <= tolerance.loss);
    INFO("gradients outside the tolerance:\n" << gradients.failures);
    CHECK(gradients.failures.empty());
    INFO("running statistics outside the tolerance:\n" << statistics.failures);
    CHECK(statistics.failures.empty());
    INFO("weights outside the tolerance after the SGD step:\n" << weights.failures);
    CHECK(weights.failures.empty());
}

// ------------------------------------------------------------- a small network and its data

constexpr std::int64_t image_size = 16, classes = 4;

// conv-bn-relu-maxpool-conv-bn-relu-global average-linear: every op of a ResNet but the add.
std::shared_ptr<nn::Sequential> small_network(std::uint64_t seed) {
    Generator generator(seed);
    nn::Conv2dConfig first;
    first.in_channels = 3, first.out_channels = 16, first.kernel_size = 3, first.padding = 1;
    nn::Conv2dConfig second;
    second.in_channels = 16, second.out_channels = 32, second.kernel_size = 3, second.stride = 2, second.padding = 1;
    auto network = std::make_shared<nn::Sequential>();
    network->append(std::make_shared<nn::Conv2d>(first, generator));
    network->append(std::make_shared<nn::BatchNorm2d>(16));
    network->append(std::make_shared<nn::ReLU>());
    network->append(std::make_shared<nn::MaxPool2d>(3, 2, 1));  // 16x16 -> 8x8
    network->append(std::make_shared<nn::Conv2d>(second, generator));  // -> 4x4
    network->append(std::make_shared<nn::BatchNorm2d>(32));
    network->append(std::make_shared<nn::ReLU>());
    network->append(std::make_shared<nn::AdaptiveAvgPool2d>(1, 1));
    network->append(std::make_shared<nn::Flatten>());
    network->append(std::make_shared<nn::Linear>(32, classes, true, generator));
    return network;
}

struct Batch {
    Tensor images, labels;
};

// Learnable synthetic data, fixed seed: each class is a random 3x16x16 pattern; an image is its
// class's pattern plus Gaussian noise of half the pattern's spread.
std::vector<Batch> synthetic_batches(int count, std::int64_t batch_size, std::uint64_t seed) {
    const std::vector<float> patterns = random_cpu({classes, 3, image_size, image_size}, seed).to_float_vector();
    const std::int64_t pixels = 3 * image_size * image_size;
    Generator generator(seed + 1);
    std::vector<Batch> batches;
    for (int b = 0; b < count; ++b) {
        std::vector<float> images(static_cast<std::size_t>(batch_size * pixels));
        std::vector<std::int64_t> labels(static_cast<std::size_t>(batch_size));
        for (std::int64_t n = 0; n < batch_size; ++n) {
            const std::int64_t label = static_cast<std::int64_t>(generator.below(classes));
            labels[static_cast<std::size_t>(n)] = label;
            for (std::int64_t p = 0; p < pixels; ++p) {
                const float pattern = patterns[static_cast<std::size_t>(label * pixels + p)];
                const float noise = 0.5f * static_cast<float>(generator.normal());
                images[static_cast<std::size_t>(n * pixels + p)] = pattern + noise;
            }
        }
        batches.push_back({Tensor::from_vector(images, {batch_size, 3, image_size, image_size}),
                           Tensor::from_vector(labels, {batch_size})});
    }
    return batches;
}

// One SGD step on `device`; returns the loss (item(): one host synchronisation, fine in a test).
double train_step(nn::Module& model, SGD& optimizer, const Batch& batch, Device device) {
    Tensor loss = cross_entropy(model(batch.images.to(device)), batch.labels.to(device));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    return loss.item();
}

}  // namespace

TEST_CASE("a ResNet-50 training step on the GPU matches the CPU") {
    MathModeGuard guard;
    set_math_mode(MathMode::FP32);
    check_resnet50_step({1e-3, 1e-3, 1e-3, 1e-3, 1e-3}, "fp32");
}

TEST_CASE("a ResNet-50 training step in TF32 math mode stays close to the CPU's float32") {
    // TF32 rounds the inputs of every conv and matrix product to a 10-bit mantissa (unit
    // roundoff 2^-11 ~ 4.9e-4, against 6e-8 for float32). A product summed over K terms then
    // carries ~5e-4 relative error; through ~50 conv layers, with batch norm renormalising after
    // each, the logits move by ~1e-2 relative, and gradients, which pass through the forward
    // errors and then as many TF32 products again, by a few 1e-2. Ten to fifty times the
    // float32 tolerances: still far below what a wrong kernel produces (errors of order 1).
    MathModeGuard guard;
    set_math_mode(MathMode::TF32);
    check_resnet50_step({2e-2, 1e-2, 5e-2, 2e-2, 5e-2}, "tf32");
}

TEST_CASE("a short training run on the GPU follows the CPU's loss curve") {
    // Same weights, same 4 batches of 8 cycled for 20 steps, SGD lr 0.05 momentum 0.9. The two
    // devices start ~1e-6 apart (float32 summation order); SGD on this small network grows such
    // a gap slowly (measured on the CPU: weights perturbed by 1e-6 relative move the 20-step loss
    // curve by < 1e-6 relative), so 2% per step leaves ample room for the GPU's different
    // summation orders in every layer, while a wrong gradient or update bends the curve away.
    MathModeGuard guard;
    set_math_mode(MathMode::FP32);
    const std::vector<Batch> batches = synthetic_batches(4, 8, 77);
    auto cpu_model = small_network(1);
    auto gpu_model = small_network(2);
    gpu_model->load_state_dict(cpu_model->state_dict());
    gpu_model->to(gpu());
    SGD cpu_optimizer({named_parameter_group(cpu_model->named_parameters())}, sgd_options());
    SGD gpu_optimizer({named_parameter_group(gpu_model->named_parameters())}, sgd_options());
    std::vector<double> cpu_losses, gpu_losses;
    for (int step = 0; step < 20; ++step) {
        const Batch& batch = batches[static_cast<std::size_t>(step) % batches.size()];
        cpu_losses.push_back(train_step(*cpu_model, cpu_optimizer, batch, Device::cpu()));
        gpu_losses.push_back(train_step(*gpu_model, gpu_optimizer, batch, gpu()));
    }
    std::ostringstream curves;
    for (std::size_t i = 0; i < cpu_losses.size(); ++i) {
        curves << "step " << i << ": cpu " << cpu_losses[i] << ", gpu " << gpu_losses[i] << "\n";
    }
    INFO(curves.str());
    for (std::size_t i = 0; i < cpu_losses.size(); ++i) {
        INFO("step " << i);
        CHECK(std::abs(gpu_losses[i] - cpu_losses[i]) <= 0.02 * std::abs(cpu_losses[i]));
    }
    // It learns: the last four steps (one pass over the data) well below the first four (on the
    // CPU: 5.67 -> 2.36, so 0.7 leaves room).
    const double first = gpu_losses[0] + gpu_losses[1] + gpu_losses[2] + gpu_losses[3];
    const double last = gpu_losses[16] + gpu_losses[17] + gpu_losses[18] + gpu_losses[19];
    CHECK(last < 0.7 * first);
}

TEST_CASE("GPU training steps after the warm-up allocate nothing new from the device") {
    // ResNet-18 (small stem) adds the residual path to the small network's ops.
    nn::ResNetConfig config;
    config.depth = 18;
    config.num_classes = classes;
    config.small_stem = true;
    nn::ResNet model(config);
    model.to(gpu());
    SGD optimizer({named_parameter_group(model.named_parameters())}, sgd_options());
    const std::vector<Batch> batches = synthetic_batches(2, 8, 99);
    for (int step = 0; step < 2; ++step) train_step(model, optimizer, batches[static_cast<std::size_t>(step)], gpu());
    synchronize(gpu());
    Allocator& allocator = allocator_for(gpu());
    const AllocatorStats before = allocator.stats();
    for (int step = 0; step < 4; ++step) {
        train_step(model, optimizer, batches[static_cast<std::size_t>(step) % batches.size()], gpu());
    }
    synchronize(gpu());
    const AllocatorStats after = allocator.stats();
    INFO("system allocations " << before.system_allocations << " -> " << after.system_allocations << ", in use "
                               << after.bytes_in_use << ", cached " << after.bytes_cached << ", reserved "
                               << after.bytes_reserved << ", peak " << after.peak_bytes_in_use);
    CHECK(after.system_allocations == before.system_allocations);
    CHECK(after.allocation_count > before.allocation_count);  // the steps did allocate, from the cache
    CHECK(after.bytes_in_use > 0);
    CHECK(after.bytes_in_use <= after.bytes_reserved);
    CHECK(after.bytes_cached <= after.bytes_reserved);
    CHECK(after.peak_bytes_in_use >= after.bytes_in_use);
}

TEST_CASE("a CPU tensor into a GPU model is an error naming both devices") {
    auto model = small_network(3);
    model->to(gpu());
    const Tensor images = random_cpu({2, 3, image_size, image_size}, 4);
    require_error([&] { model->forward(images); }, {"cpu", "cuda:0"});
    Tensor logits = model->forward(images.to(gpu()));
    const Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{0, 1}, {2});
    require_error([&] { cross_entropy(logits, labels); }, {"cross_entropy", "cpu", "cuda:0"});
}
