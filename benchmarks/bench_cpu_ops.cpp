// CPU op benchmarks on ResNet-50 layer shapes at a small batch (default 8; set
// CUDAGRAD_BENCH_BATCH). Reports GFLOP/s for conv2d and linear (2 * multiply-adds) and GB/s for
// the memory-bound ops (bytes the op must move at least: read inputs once, write outputs once).
//
//   build/benchmarks/bench_cpu_ops --benchmark_min_time=0.2
//
// Rates use wall-clock time (UseRealTime): the work runs on several threads, and the main
// thread's CPU time would overstate them.
//
// Each case checks its output once for NaN/inf before timing, so a broken op cannot report a
// number.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include <cudagrad/cudagrad.hpp>

using namespace cudagrad;

namespace {

std::int64_t batch_size() {
    const char* text = std::getenv("CUDAGRAD_BENCH_BATCH");
    return text ? std::max(1L, std::atol(text)) : 8;
}

void require_finite(benchmark::State& state, const Tensor& tensor) {
    for (float value : tensor.to_float_vector()) {
        if (!std::isfinite(value)) {
            state.SkipWithError("output is not finite: the op is broken, not timed");
            return;
        }
    }
}

struct ConvShape {
    const char* name;
    std::int64_t channels, height, out_channels, kernel, stride;
};

// The distinct conv shapes of ResNet-50 at 224x224 (one per kind), as (C, H=W, K, R=S, stride).
const ConvShape conv_shapes[] = {
    {"conv1_7x7s2_3to64_224", 3, 224, 64, 7, 2},
    {"layer1_1x1_64to64_56", 64, 56, 64, 1, 1},
    {"layer1_3x3_64to64_56", 64, 56, 64, 3, 1},
    {"layer1_1x1_64to256_56", 64, 56, 256, 1, 1},
    {"layer2_3x3s2_128to128_56", 128, 56, 128, 3, 2},
    {"layer2_1x1_128to512_28", 128, 28, 512, 1, 1},
    {"layer3_3x3_256to256_14", 256, 14, 256, 3, 1},
    {"layer3_1x1s2_512to1024_28", 512, 28, 1024, 1, 2},
    {"layer4_1x1_2048to512_7", 2048, 7, 512, 1, 1},
    {"layer4_3x3_512to512_7", 512, 7, 512, 3, 1},
};

Conv2dOptions options_for(const ConvShape& shape) {
    Conv2dOptions options;
    options.stride_h = options.stride_w = shape.stride;
    options.padding_h = options.padding_w = shape.kernel / 2;
    return options;
}

double conv_flops(const ConvShape& shape, std::int64_t batch) {
    std::int64_t out = (shape.height + 2 * (shape.kernel / 2) - shape.kernel) / shape.stride + 1;
    return 2.0 * batch * shape.out_channels * out * out * shape.channels * shape.kernel * shape.kernel;
}

void conv_forward(benchmark::State& state, ConvShape shape) {
    std::int64_t batch = batch_size();
    Tensor x = randn({batch, shape.channels, shape.height, shape.height});
    Tensor weight = randn({shape.out_channels, shape.channels, shape.kernel, shape.kernel});
    NoGradGuard no_grad;
    require_finite(state, conv2d(x, weight, Tensor(), options_for(shape)));
    for (auto _ : state) benchmark::DoNotOptimize(conv2d(x, weight, Tensor(), options_for(shape)).raw_data());
    state.counters["GFLOP/s"] = benchmark::Counter(conv_flops(shape, batch) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Backward data and weights together (2x the forward's FLOPs).
void conv_backward(benchmark::State& state, ConvShape shape) {
    std::int64_t batch = batch_size();
    Tensor x = randn({batch, shape.channels, shape.height, shape.height});
    Tensor weight = randn({shape.out_channels, shape.channels, shape.kernel, shape.kernel});
    x.set_requires_grad(true);
    weight.set_requires_grad(true);
    Tensor probe = conv2d(x, weight, Tensor(), options_for(shape));
    Tensor output_gradient = randn(probe.shape());
    probe.backward(output_gradient);
    require_finite(state, weight.grad());
    for (auto _ : state) {
        state.PauseTiming();
        Tensor y = conv2d(x, weight, Tensor(), options_for(shape));
        x.zero_grad();
        weight.zero_grad();
        state.ResumeTiming();
        y.backward(output_gradient);
    }
    state.counters["GFLOP/s"] = benchmark::Counter(2 * conv_flops(shape, batch) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

double activation_bytes(const Tensor& x) { return static_cast<double>(x.numel()) * 4.0; }

void batch_norm_forward(benchmark::State& state) {
    Tensor x = randn({batch_size(), 256, 56, 56});
    Tensor weight = Tensor::ones({256}), bias = Tensor::zeros({256});
    Tensor mean = Tensor::zeros({256}), var = Tensor::ones({256});
    NoGradGuard no_grad;
    require_finite(state, batch_norm2d(x, weight, bias, mean, var, Tensor(), {}));
    for (auto _ : state) benchmark::DoNotOptimize(batch_norm2d(x, weight, bias, mean, var, Tensor(), {}).raw_data());
    // Reads x twice (statistics, then normalise) and writes y.
    state.counters["GB/s"] = benchmark::Counter(3 * activation_bytes(x) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void batch_norm_backward(benchmark::State& state) {
    Tensor x = randn({batch_size(), 256, 56, 56});
    Tensor weight = Tensor::ones({256}), bias = Tensor::zeros({256});
    weight.set_requires_grad(true);
    bias.set_requires_grad(true);
    x.set_requires_grad(true);
    Tensor output_gradient = randn(x.shape());
    for (auto _ : state) {
        state.PauseTiming();
        Tensor y = batch_norm2d(x, weight, bias, Tensor(), Tensor(), Tensor(), {});
        x.zero_grad();
        state.ResumeTiming();
        y.backward(output_gradient);
    }
    require_finite(state, weight.grad());
    // Reads x and dy twice (reductions, then dx), writes dx.
    state.counters["GB/s"] = benchmark::Counter(5 * activation_bytes(x) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void relu_forward(benchmark::State& state) {
    Tensor x = randn({batch_size(), 256, 56, 56});
    NoGradGuard no_grad;
    for (auto _ : state) benchmark::DoNotOptimize(relu(x).raw_data());
    state.counters["GB/s"] = benchmark::Counter(2 * activation_bytes(x) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void add_forward(benchmark::State& state) {
    Tensor a = randn({batch_size(), 256, 56, 56}), b = randn({batch_size(), 256, 56, 56});
    NoGradGuard no_grad;
    for (auto _ : state) benchmark::DoNotOptimize(add(a, b).raw_data());
    state.counters["GB/s"] = benchmark::Counter(3 * activation_bytes(a) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void max_pool_forward(benchmark::State& state) {
    Tensor x = randn({batch_size(), 64, 112, 112});
    Pool2dOptions options{.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .padding_h = 1, .padding_w = 1};
    NoGradGuard no_grad;
    Tensor probe = max_pool2d(x, options);
    require_finite(state, probe);
    for (auto _ : state) benchmark::DoNotOptimize(max_pool2d(x, options).raw_data());
    state.counters["GB/s"] = benchmark::Counter((activation_bytes(x) + activation_bytes(probe)) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void global_avg_pool_forward(benchmark::State& state) {
    Tensor x = randn({batch_size(), 2048, 7, 7});
    NoGradGuard no_grad;
    for (auto _ : state) benchmark::DoNotOptimize(global_avg_pool2d(x).raw_data());
    state.counters["GB/s"] = benchmark::Counter(activation_bytes(x) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void linear_forward_backward(benchmark::State& state) {
    std::int64_t batch = batch_size();
    Tensor x = randn({batch, 2048}), weight = randn({1000, 2048}), bias = randn({1000});
    weight.set_requires_grad(true);
    Tensor output_gradient = randn({batch, 1000});
    for (auto _ : state) {
        weight.zero_grad();
        linear(x, weight, bias).backward(output_gradient);
    }
    require_finite(state, weight.grad());
    // Forward and the weight gradient: 2 GEMMs of batch x 1000 x 2048.
    state.counters["GFLOP/s"] = benchmark::Counter(2 * 2.0 * batch * 1000 * 2048 * 1e-9,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

void cross_entropy_forward_backward(benchmark::State& state) {
    std::int64_t batch = batch_size();
    Tensor logits = randn({batch, 1000});
    logits.set_requires_grad(true);
    std::vector<std::int64_t> label_values(static_cast<std::size_t>(batch));
    for (std::int64_t i = 0; i < batch; ++i) label_values[static_cast<std::size_t>(i)] = (i * 37) % 1000;
    Tensor labels = Tensor::from_vector(label_values, {batch});
    for (auto _ : state) {
        logits.zero_grad();
        cross_entropy(logits, labels, 0.1).backward();
    }
    require_finite(state, logits.grad());
}

int register_all() {
    for (const ConvShape& shape : conv_shapes) {
        benchmark::RegisterBenchmark((std::string("conv2d_forward/") + shape.name).c_str(), conv_forward, shape)
            ->Unit(benchmark::kMillisecond)->UseRealTime();
        benchmark::RegisterBenchmark((std::string("conv2d_backward/") + shape.name).c_str(), conv_backward, shape)
            ->Unit(benchmark::kMillisecond)->UseRealTime();
    }
    benchmark::RegisterBenchmark("batch_norm_forward/256x56x56", batch_norm_forward)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("batch_norm_backward/256x56x56", batch_norm_backward)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("relu_forward/256x56x56", relu_forward)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("add_forward/256x56x56", add_forward)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("max_pool_forward/3x3s2_64x112x112", max_pool_forward)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("global_avg_pool_forward/2048x7x7", global_avg_pool_forward)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("linear_forward_backward/2048to1000", linear_forward_backward)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("cross_entropy_forward_backward/1000", cross_entropy_forward_backward)
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
    return 0;
}
const int registered = register_all();

}  // namespace

int main(int argc, char** argv) {
    (void)registered;
    benchmark::Initialize(&argc, argv);
    benchmark::AddCustomContext("batch", std::to_string(batch_size()));
    benchmark::AddCustomContext("devices", describe_devices());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
