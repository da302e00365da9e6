// GPU elementwise ops on the ResNet-50 activation shapes, and the fused SGD step over
// ResNet-50's parameters:
//
//   relu_forward/<shape>/b<batch>/{cudnn,cuda,cuda_v1}   y = max(x, 0)        8 bytes per element
//   relu_backward/<shape>/b<batch>/{cudnn,cuda}          dx = y > 0 ? dy : 0  12 bytes per element
//   add/<shape>/b<batch>/cuda                            y = a + b            12 bytes per element
//   sgd_step/resnet50_params/cuda   one optimiser step (momentum 0.9, weight decay 1e-4) over the
//       161 parameter tensors (25.6 M floats): the host table, its copy and ONE launch; reads
//       w, g, buffer and writes w, buffer: 20 bytes per parameter, 0.51 GB, ~0.17 ms at 3 TB/s
//
// cuda is the grid-stride float4 kernel the ops use (kernels/elementwise.cu v2), cuda_v1 the
// one-element-per-thread rung of the ladder. The kernels are called directly (src/cuda/*.hpp) on
// buffers allocated before timing. Napkin math: relu forward at layer1_256x56/b128 moves 822 MB,
// 0.27 ms at ~3 TB/s (PyTorch: 0.278 ms); GB/s shows how close each case comes.
//
// Inputs: a batch-2 block of uniform [-1, 1) values from the CPU, repeated over the batch, so
// the check compares the first two images with the CPU op (cheap at any batch).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "gpu_benchmark.hpp"
#include "resnet50_shapes.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/cudnn_activation.hpp"
#include "cuda/elementwise.hpp"
#endif

namespace {

using namespace cudagrad;

enum class Implementation { Cudnn, Cuda, CudaV1 };

const char* implementation_name(Implementation implementation) {
    switch (implementation) {
        case Implementation::Cudnn:
            return "cudnn";
        case Implementation::Cuda:
            return "cuda";
        case Implementation::CudaV1:
            return "cuda_v1";
    }
    return "?";
}

constexpr std::int64_t check_batch = 2;

Shape activation_shape(const bench::ActivationShape& shape, std::int64_t batch) {
    return {batch, shape.channels, shape.size, shape.size};
}

// Uniform [-1, 1) values for a batch-2 block (returned, on the CPU), copied into every batch-2
// slice of a new GPU tensor of the full shape.
Tensor tiled_gpu_input(const Shape& shape, std::uint64_t seed, Tensor* block_out) {
    Shape block_shape = shape;
    block_shape[0] = std::min(shape[0], check_batch);
    Tensor block = bench::random_cpu(block_shape, seed);
    Tensor full = Tensor::empty(shape, DType::Float32, Device::cuda(0));
    for (std::int64_t start = 0; start < shape[0]; start += block_shape[0]) {
        const std::int64_t end = std::min(shape[0], start + block_shape[0]);
        full.slice(0, start, end).copy_(block.slice(0, 0, end - start));
    }
    *block_out = block;
    return full;
}

// The first images of a GPU result, on the CPU, for the check.
Tensor first_images(const Tensor& gpu_tensor, std::int64_t count) { return gpu_tensor.slice(0, 0, count); }

void relu_forward_case(benchmark::State& state, const bench::ActivationShape& activation, std::int64_t batch,
                       Implementation implementation) {
    if (!bench::gpu_ready(state)) return;
#ifdef CUDAGRAD_WITH_CUDA
    const Device device = Device::cuda(0);
    make_device_current(device);
    Tensor block;
    const Tensor x = tiled_gpu_input(activation_shape(activation, batch), 1, &block);
    Tensor y = Tensor::empty(x.shape(), DType::Float32, device);
    auto body = [&] {
        switch (implementation) {
            case Implementation::Cudnn:
                cuda::cudnn_relu_forward(x.data<float>(), y.data<float>(), x.shape());
                break;
            case Implementation::Cuda:
                cuda::relu_forward(x.data<float>(), y.data<float>(), x.numel());
                break;
            case Implementation::CudaV1:
                cuda::relu_forward_v1_one_per_thread(x.data<float>(), y.data<float>(), x.numel());
                break;
        }
    };
    body();
    if (!bench::passes_check(state, first_images(y, block.size(0)), relu(block), 0.0, 0.0)) return;
    const double mean_ms = bench::time_on_gpu(state, body);
    const double bytes = 8.0 * static_cast<double>(x.numel());
    bench::report(state, bench::case_key("relu_forward", activation.name, batch), mean_ms, 0.0, bytes,
                  implementation == Implementation::Cudnn);
#else
    (void)activation, (void)batch, (void)implementation;
#endif
}

void relu_backward_case(benchmark::State& state, const bench::ActivationShape& activation, std::int64_t batch,
                        Implementation implementation) {
    if (!bench::gpu_ready(state)) return;
#ifdef CUDAGRAD_WITH_CUDA
    const Device device = Device::cuda(0);
    make_device_current(device);
    Tensor x_block, upstream_block;
    const Tensor x = tiled_gpu_input(activation_shape(activation, batch), 2, &x_block);
    const Tensor upstream = tiled_gpu_input(x.shape(), 3, &upstream_block);
    Tensor y = Tensor::empty(x.shape(), DType::Float32, device);
    cuda::relu_forward(x.data<float>(), y.data<float>(), x.numel());
    Tensor dx = Tensor::empty(x.shape(), DType::Float32, device);
    auto body = [&] {
        if (implementation == Implementation::Cudnn) {
            cuda::cudnn_relu_backward(y.data<float>(), upstream.data<float>(), dx.data<float>(), y.shape());
        } else {
            cuda::relu_backward(y.data<float>(), upstream.data<float>(), dx.data<float>(), y.numel());
        }
    };
    body();
    Tensor x_cpu = x_block.clone().set_requires_grad(true);
    relu(x_cpu).backward(upstream_block);
    if (!bench::passes_check(state, first_images(dx, x_block.size(0)), x_cpu.grad(), 0.0, 0.0)) return;
    const double mean_ms = bench::time_on_gpu(state, body);
    const double bytes = 12.0 * static_cast<double>(x.numel());
    bench::report(state, bench::case_key("relu_backward", activation.name, batch), mean_ms, 0.0, bytes,
                  implementation == Implementation::Cudnn);
#else
    (void)activation, (void)batch, (void)implementation;
#endif
}

void add_case(benchmark::State& state, const bench::ActivationShape& activation, std::int64_t batch) {
    if (!bench::gpu_ready(state)) return;
#ifdef CUDAGRAD_WITH_CUDA
    const Device device = Device::cuda(0);
    make_device_current(device);
    Tensor a_block, b_block;
    const Tensor a = tiled_gpu_input(activation_shape(activation, batch), 4, &a_block);
    const Tensor b = tiled_gpu_input(a.shape(), 5, &b_block);
    Tensor y = Tensor::empty(a.shape(), DType::Float32, device);
    auto body = [&] {
        cuda::binary(cuda::BinaryOp::Add, a.data<float>(), b.data<float>(), y.data<float>(), a.numel());
    };
    body();
    if (!bench::passes_check(state, first_images(y, a_block.size(0)), add(a_block, b_block), 0.0, 0.0)) return;
    const double mean_ms = bench::time_on_gpu(state, body);
    bench::report(state, bench::case_key("add", activation.name, batch), mean_ms, 0.0,
                  12.0 * static_cast<double>(a.numel()), false);
#else
    (void)activation, (void)batch;
#endif
}

// One SGD step over ResNet-50's parameters: the same weights and gradients on the CPU (the
// reference, ~0.1 s for one step) and the GPU; the GPU step is then timed as a training loop
// calls it (table build and upload included).
void sgd_step_case(benchmark::State& state) {
    if (!bench::gpu_ready(state)) return;
#ifdef CUDAGRAD_WITH_CUDA
    const Device device = Device::cuda(0);
    make_device_current(device);
    nn::ResNet model(nn::ResNetConfig{});
    std::vector<Tensor> cpu_parameters, gpu_parameters;
    double elements = 0.0;
    Generator generator(6);
    for (const Tensor& parameter : model.parameters()) {
        Tensor cpu_parameter = parameter.detach().clone().set_requires_grad(true);
        Tensor gradient = Tensor::empty(parameter.shape(), DType::Float32);
        uniform_(gradient, -0.01, 0.01, generator);
        cpu_parameter.set_grad(gradient);
        Tensor gpu_parameter = cpu_parameter.detach().to(device).set_requires_grad(true);
        gpu_parameter.set_grad(gradient.to(device));
        cpu_parameters.push_back(cpu_parameter);
        gpu_parameters.push_back(gpu_parameter);
        elements += static_cast<double>(parameter.numel());
    }
    const SgdOptions options{0.1, 0.9, 0.0, 1e-4, false};
    SGD cpu_optimizer({ParameterGroup{cpu_parameters, std::nullopt, {}}}, options);
    SGD gpu_optimizer({ParameterGroup{gpu_parameters, std::nullopt, {}}}, options);
    for (int step = 0; step < 2; ++step) {  // the first step creates the buffers, the second uses them
        cpu_optimizer.step();
        gpu_optimizer.step();
    }
    for (std::size_t i = 0; i < gpu_parameters.size(); ++i) {
        if (!bench::passes_check(state, gpu_parameters[i], cpu_parameters[i], 0.0, 0.0)) return;
    }
    const double mean_ms = bench::time_on_gpu(state, [&] { gpu_optimizer.step(); });
    state.counters["parameters"] = elements;
    bench::report(state, "sgd_step/resnet50_params", mean_ms, 0.0, 20.0 * elements, false);
#endif
}

void register_cases() {
    for (const std::int64_t batch : bench::benchmark_batches()) {
        for (const bench::ActivationShape& activation : bench::resnet50_activations()) {
            // The vendor case first, so ours can report vs_vendor.
            for (Implementation implementation :
                 {Implementation::Cudnn, Implementation::Cuda, Implementation::CudaV1}) {
                const std::string name = bench::case_key("relu_forward", activation.name, batch) + "/" +
                                         implementation_name(implementation);
                bench::register_gpu_case(name, [&activation, batch, implementation](benchmark::State& s) {
                    relu_forward_case(s, activation, batch, implementation);
                });
            }
            for (Implementation implementation : {Implementation::Cudnn, Implementation::Cuda}) {
                const std::string name = bench::case_key("relu_backward", activation.name, batch) + "/" +
                                         implementation_name(implementation);
                bench::register_gpu_case(name, [&activation, batch, implementation](benchmark::State& s) {
                    relu_backward_case(s, activation, batch, implementation);
                });
            }
            bench::register_gpu_case(bench::case_key("add", activation.name, batch) + "/cuda",
                                     [&activation, batch](benchmark::State& s) { add_case(s, activation, batch); });
        }
    }
    bench::register_gpu_case("sgd_step/resnet50_params/cuda", [](benchmark::State& s) { sgd_step_case(s); });
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    cudagrad::bench::add_device_context();
    register_cases();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
