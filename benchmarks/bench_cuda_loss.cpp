// GPU softmax and cross-entropy at the classifier's shape, (batch, 1000):
//
//   log_softmax_forward/classes1000/b<batch>/{cudnn,cuda}    y = log_softmax(x, 1)
//   log_softmax_backward/classes1000/b<batch>/{cudnn,cuda}   dx = dy - exp(y) * sum dy
//   cross_entropy_forward_backward/classes1000/b<batch>/cuda the fused loss (forward: rows kernel
//       + one-block mean; backward: one elementwise kernel), as one training step runs it
//
// The kernels are called directly (src/cuda/softmax_cross_entropy.hpp, cudnn_softmax.hpp) on
// buffers allocated before timing, so the time is the kernels' alone. Each case is first checked
// against the CPU op at its full size (a (256, 1000) softmax takes ~1 ms on the CPU).
// Bytes are the minimum the op must move: forward reads x and writes y (8 bytes per element),
// backward reads y and dy and writes dx (12), the fused loss reads the logits and labels and
// writes the gradient (8 per element + 8 per row). At 128 x 1000 that is ~1 MB: 0.3 us at
// 3 TB/s, so every case is launch-bound (a few us per launch; PyTorch's fused loss takes
// ~26 us). GB/s shows how far from bandwidth-bound; vs_vendor compares with cuDNN.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gpu_benchmark.hpp"
#include "resnet50_shapes.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/cudnn_softmax.hpp"
#include "cuda/softmax_cross_entropy.hpp"
#endif

namespace {

using namespace cudagrad;

constexpr std::int64_t classes = 1000;
const char* const shape_name = "classes1000";

[[maybe_unused]] Tensor random_logits(std::int64_t batch, std::uint64_t seed) {
    return bench::random_cpu({batch, classes}, seed, -4.0, 4.0);
}

std::string key_for(const char* op, std::int64_t batch) { return bench::case_key(op, shape_name, batch); }

void log_softmax_forward_case(benchmark::State& state, std::int64_t batch, bool vendor) {
    if (!bench::gpu_ready(state)) return;
#ifdef CUDAGRAD_WITH_CUDA
    const Device device = Device::cuda(0);
    make_device_current(device);
    const Tensor x_cpu = random_logits(batch, 1);
    const Tensor x = x_cpu.to(device);
    Tensor y = Tensor::empty(x.shape(), DType::Float32, device);
    const cuda::SoftmaxShape shape{batch, classes, 1};
    auto body = [&] {
        if (vendor) {
            cuda::cudnn_softmax_forward(x.data<float>(), y.data<float>(), shape, true);
        } else {
            cuda::softmax_forward(x.data<float>(), y.data<float>(), shape, true);
        }
    };
    body();
    if (!bench::passes_check(state, y, log_softmax(x_cpu, 1), 1e-4, 1e-5)) return;
    const double mean_ms = bench::time_on_gpu(state, body);
    const double bytes = 8.0 * static_cast<double>(batch * classes);
    bench::report(state, key_for("log_softmax_forward", batch), mean_ms, 0.0, bytes, vendor);
#else
    (void)batch, (void)vendor;
#endif
}

void log_softmax_backward_case(benchmark::State& state, std::int64_t batch, bool vendor) {
    if (!bench::gpu_ready(state)) return;
#ifdef CUDAGRAD_WITH_CUDA
    const Device device = Device::cuda(0);
    make_device_current(device);
    Tensor x_cpu = random_logits(batch, 2).set_requires_grad(true);
    const Tensor upstream_cpu = random_logits(batch, 3);
    Tensor y_cpu = log_softmax(x_cpu, 1);
    y_cpu.backward(upstream_cpu);
    const Tensor y = y_cpu.detach().to(device), upstream = upstream_cpu.to(device);
    Tensor dx = Tensor::empty(y.shape(), DType::Float32, device);
    const cuda::SoftmaxShape shape{batch, classes, 1};
    auto body = [&] {
        if (vendor) {
            cuda::cudnn_softmax_backward(y.data<float>(), upstream.data<float>(), dx.data<float>(), shape, true);
        } else {
            cuda::softmax_backward(y.data<float>(), upstream.data<float>(), dx.data<float>(), shape, true);
        }
    };
    body();
    if (!bench::passes_check(state, dx, x_cpu.grad(), 1e-4, 1e-4)) return;
    const double mean_ms = bench::time_on_gpu(state, body);
    const double bytes = 12.0 * static_cast<double>(batch * classes);
    bench::report(state, key_for("log_softmax_backward", batch), mean_ms, 0.0, bytes, vendor);
#else
    (void)batch, (void)vendor;
#endif
}

void cross_entropy_case(benchmark::State& state, std::int64_t batch) {
    if (!bench::gpu_ready(state)) return;
#ifdef CUDAGRAD_WITH_CUDA
    const Device device = Device::cuda(0);
    make_device_current(device);
    Tensor logits_cpu = random_logits(batch, 4).set_requires_grad(true);
    Generator generator(5);
    std::vector<std::int64_t> label_values(static_cast<std::size_t>(batch));
    for (auto& label : label_values) label = static_cast<std::int64_t>(generator.below(classes));
    const Tensor labels_cpu = Tensor::from_vector(label_values, {batch});
    Tensor loss_cpu = cross_entropy(logits_cpu, labels_cpu, 0.1);
    loss_cpu.backward();

    const Tensor logits = logits_cpu.detach().to(device), labels = labels_cpu.to(device);
    Tensor row_statistics = Tensor::empty({2, batch}, DType::Float32, device);
    Tensor row_loss = Tensor::empty({batch}, DType::Float64, device);
    Tensor loss = Tensor::empty({}, DType::Float32, device);
    const Tensor upstream = Tensor::ones({}, DType::Float32, device);
    Tensor logits_gradient = Tensor::empty(logits.shape(), DType::Float32, device);
    float* row_max = row_statistics.data<float>();
    auto body = [&] {
        cuda::cross_entropy_forward(logits.data<float>(), labels.data<std::int64_t>(), batch, classes, 0.1, row_max,
                                    row_max + batch, row_loss.data<double>(), loss.data<float>());
        cuda::cross_entropy_backward(logits.data<float>(), labels.data<std::int64_t>(), row_max, row_max + batch,
                                     batch, classes, 0.1, upstream.data<float>(), logits_gradient.data<float>());
    };
    body();
    if (!bench::passes_check(state, loss, loss_cpu.detach(), 1e-5, 1e-6)) return;
    if (!bench::passes_check(state, logits_gradient, logits_cpu.grad(), 1e-4, 1e-8)) return;
    const double mean_ms = bench::time_on_gpu(state, body);
    const double bytes = 8.0 * static_cast<double>(batch * classes) + 8.0 * static_cast<double>(batch);
    bench::report(state, key_for("cross_entropy_forward_backward", batch), mean_ms, 0.0, bytes, false);
#else
    (void)batch;
#endif
}

void register_cases() {
    for (const std::int64_t batch : bench::benchmark_batches()) {
        // The vendor case first, so ours can report vs_vendor.
        for (const bool vendor : {true, false}) {
            const std::string name = key_for("log_softmax_forward", batch) + (vendor ? "/cudnn" : "/cuda");
            bench::register_gpu_case(name, [batch, vendor](benchmark::State& state) {
                log_softmax_forward_case(state, batch, vendor);
            });
        }
        for (const bool vendor : {true, false}) {
            const std::string name = key_for("log_softmax_backward", batch) + (vendor ? "/cudnn" : "/cuda");
            bench::register_gpu_case(name, [batch, vendor](benchmark::State& state) {
                log_softmax_backward_case(state, batch, vendor);
            });
        }
        bench::register_gpu_case(key_for("cross_entropy_forward_backward", batch) + "/cuda",
                                 [batch](benchmark::State& state) { cross_entropy_case(state, batch); });
    }
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    cudagrad::bench::add_device_context();
    register_cases();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
