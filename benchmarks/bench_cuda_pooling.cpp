// GPU pooling at ResNet-50's shapes, per batch:
//
//   max_pool_forward/stem_64x112/b<batch>/{cudnn,cuda}     3x3 stride 2 padding 1, (N,64,112,112) -> 56x56
//   max_pool_backward/stem_64x112/b<batch>/{cudnn,cuda}    dx from dy (ours: the saved int32 argmax;
//                                                          cuDNN: x and y)
//   global_avg_pool_forward/layer4_2048x7/b<batch>/cuda    (N,2048,7,7) -> (N,2048,1,1), ours only
//   global_avg_pool_backward/layer4_2048x7/b<batch>/cuda
//
// The implementations are called directly (src/cuda/pooling.hpp, cudnn_pooling.hpp) on buffers
// allocated before timing. Each case is first checked against the CPU op on the first two images
// of the timed input (pooling is per image, so the batch-2 slice of the output must match the
// CPU's result for those images exactly as computed).
// Bytes are the minimum the op must move: max forward reads x and writes y (our kernel also
// writes 4 bytes of argmax per output: +25%), max backward reads dy and writes dx (ours also reads
// the argmax, cuDNN reads x and y again), global forward reads x and writes y, global backward
// reads dy and writes dx.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gpu_benchmark.hpp"
#include "resnet50_shapes.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/cudnn_pooling.hpp"
#include "cuda/pooling.hpp"
#endif

namespace {

using namespace cudagrad;

#ifdef CUDAGRAD_WITH_CUDA
Pool2dOptions stem_pool() {
    Pool2dOptions options;
    options.kernel_h = options.kernel_w = 3;
    options.stride_h = options.stride_w = 2;
    options.padding_h = options.padding_w = 1;
    return options;
}

cuda::PoolGeometry stem_geometry(std::int64_t batch, const bench::ActivationShape& stem) {
    cuda::PoolGeometry g;
    g.batch = batch;
    g.channels = stem.channels;
    g.input_h = g.input_w = stem.size;
    g.output_h = g.output_w = (stem.size + 2 - 3) / 2 + 1;
    g.kernel_h = g.kernel_w = 3;
    g.stride_h = g.stride_w = 2;
    g.padding_h = g.padding_w = 1;
    return g;
}

// Distinct values within each image, in a scrambled order: cuDNN does not document which tied
// position its max-pool backward picks, and uniform random floats tie in some 3x3 window of a
// batch. (i * 7919) mod n is a permutation of 0..n-1 when n is not a multiple of the prime 7919.
Tensor scrambled_values(const Shape& shape) {
    const std::int64_t per_image = shape_numel(shape) / shape[0];
    std::vector<float> values(static_cast<std::size_t>(shape_numel(shape)));
    for (std::int64_t n = 0; n < shape[0]; ++n) {
        for (std::int64_t i = 0; i < per_image; ++i) {
            values[static_cast<std::size_t>(n * per_image + i)] =
                static_cast<float>(static_cast<double>((i * 7919) % per_image) / static_cast<double>(per_image) - 0.5);
        }
    }
    return Tensor::from_vector(values, shape);
}

// The first two images of a GPU tensor, copied to the CPU.
Tensor first_two(const Tensor& tensor) { return tensor.slice(0, 0, 2).to(Device::cpu()); }

// The CPU reference for the first two images: y, or dx for the dy given.
Tensor max_pool_reference(const Tensor& x_cpu, const Tensor& dy_cpu, bool backward) {
    Tensor input = x_cpu.clone().set_requires_grad(backward);
    const Tensor output = max_pool2d(input, stem_pool());
    if (!backward) return output;
    output.backward(dy_cpu);
    return input.grad();
}
#endif

void max_pool_case(benchmark::State& state, std::int64_t batch, bool backward, bool vendor) {
    if (!bench::gpu_ready(state)) return;
#ifdef CUDAGRAD_WITH_CUDA
    const Device device = Device::cuda(0);
    make_device_current(device);
    const bench::ActivationShape stem = bench::resnet50_activations().front();  // stem_64x112
    const cuda::PoolGeometry g = stem_geometry(batch, stem);
    const Shape input_shape{batch, stem.channels, stem.size, stem.size};
    const Shape output_shape{batch, stem.channels, g.output_h, g.output_w};
    const Tensor x = scrambled_values(input_shape).to(device);
    const Tensor dy = bench::random_cpu(output_shape, 2).to(device);
    Tensor y = Tensor::empty(output_shape, DType::Float32, device);
    Tensor argmax = Tensor::empty(output_shape, DType::Float32, device);  // int32 storage
    Tensor dx = Tensor::empty(input_shape, DType::Float32, device);
    auto* indices = static_cast<std::int32_t*>(argmax.raw_data());
    cuda::max_pool2d_forward(x.data<float>(), y.data<float>(), indices, g);  // y and argmax for the backward
    auto body = [&] {
        if (!backward) {
            if (vendor) {
                cuda::cudnn_max_pool2d_forward(x.data<float>(), y.data<float>(), g);
            } else {
                cuda::max_pool2d_forward(x.data<float>(), y.data<float>(), indices, g);
            }
        } else if (vendor) {
            cuda::cudnn_max_pool2d_backward(x.data<float>(), y.data<float>(), dy.data<float>(), dx.data<float>(), g);
        } else {
            cuda::max_pool2d_backward(dy.data<float>(), indices, dx.data<float>(), g);
        }
    };
    body();
    const Tensor expected = max_pool_reference(first_two(x), first_two(dy), backward);
    if (!bench::passes_check(state, first_two(backward ? dx : y), expected, 1e-5, 1e-6)) return;
    const double mean_ms = bench::time_on_gpu(state, body);
    const double bytes = 4.0 * static_cast<double>(shape_numel(input_shape) + shape_numel(output_shape));
    const char* op = backward ? "max_pool_backward" : "max_pool_forward";
    bench::report(state, bench::case_key(op, stem.name, batch), mean_ms, 0.0, bytes, vendor);
#else
    (void)batch, (void)backward, (void)vendor;
#endif
}

void global_avg_pool_case(benchmark::State& state, std::int64_t batch, bool backward) {
    if (!bench::gpu_ready(state)) return;
#ifdef CUDAGRAD_WITH_CUDA
    const Device device = Device::cuda(0);
    make_device_current(device);
    const bench::ActivationShape layer4 = bench::resnet50_activations().back();  // layer4_2048x7
    const std::int64_t planes = batch * layer4.channels, plane_size = layer4.size * layer4.size;
    const Shape input_shape{batch, layer4.channels, layer4.size, layer4.size};
    const Shape output_shape{batch, layer4.channels, 1, 1};
    const Tensor x = bench::random_cpu(input_shape, 3).to(device);
    const Tensor dy = bench::random_cpu(output_shape, 4).to(device);
    Tensor y = Tensor::empty(output_shape, DType::Float32, device);
    Tensor dx = Tensor::empty(input_shape, DType::Float32, device);
    auto body = [&] {
        if (backward) {
            cuda::global_avg_pool2d_backward(dy.data<float>(), dx.data<float>(), planes, plane_size);
        } else {
            cuda::global_avg_pool2d_forward(x.data<float>(), y.data<float>(), planes, plane_size);
        }
    };
    body();
    Tensor input = first_two(x).set_requires_grad(backward);
    const Tensor output = global_avg_pool2d(input);
    if (backward) output.backward(first_two(dy));
    const Tensor expected = backward ? input.grad() : output;
    if (!bench::passes_check(state, first_two(backward ? dx : y), expected, 1e-5, 1e-6)) return;
    const double mean_ms = bench::time_on_gpu(state, body);
    const double bytes = 4.0 * static_cast<double>(shape_numel(input_shape) + shape_numel(output_shape));
    const char* op = backward ? "global_avg_pool_backward" : "global_avg_pool_forward";
    bench::report(state, bench::case_key(op, layer4.name, batch), mean_ms, 0.0, bytes, false);
#else
    (void)batch, (void)backward;
#endif
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    cudagrad::bench::add_device_context();
    const std::string stem = cudagrad::bench::resnet50_activations().front().name;
    const std::string layer4 = cudagrad::bench::resnet50_activations().back().name;
    for (const std::int64_t batch : cudagrad::bench::benchmark_batches()) {
        for (const bool backward : {false, true}) {
            for (const bool vendor : {true, false}) {  // the vendor first, for vs_vendor
                const char* op = backward ? "max_pool_backward" : "max_pool_forward";
                const std::string name = cudagrad::bench::case_key(op, stem, batch) + (vendor ? "/cudnn" : "/cuda");
                cudagrad::bench::register_gpu_case(name, [batch, backward, vendor](benchmark::State& state) {
                    max_pool_case(state, batch, backward, vendor);
                });
            }
        }
        for (const bool backward : {false, true}) {
            const char* op = backward ? "global_avg_pool_backward" : "global_avg_pool_forward";
            const std::string name = cudagrad::bench::case_key(op, layer4, batch) + "/cuda";
            cudagrad::bench::register_gpu_case(name, [batch, backward](benchmark::State& state) {
                global_avg_pool_case(state, batch, backward);
            });
        }
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
