// GPU batch normalisation on ResNet-50's activation shapes (resnet50_shapes.hpp), per batch:
//
//   batch_norm_forward/<shape>/b<batch>/{cudnn,cuda}       training: statistics, running update, y
//   batch_norm_eval_forward/<shape>/b<batch>/{cudnn,cuda}  y from the running statistics
//   batch_norm_backward/<shape>/b<batch>/{cudnn,cuda}      training backward: dx, dweight, dbias
//
// The implementations are called directly (src/cuda/batch_norm.hpp, cudnn_batch_norm.hpp) on
// buffers allocated before timing, so the time is the kernels' alone. Each case is first checked
// against the CPU op on a batch-2 input of the same shape (the statistics need a whole batch, so
// not a slice of the timed one), through the same call.
// Bytes are the minimum the op must move: forward reads x and writes y (8 bytes per element),
// backward reads x and dy and writes dx (12); the per-channel vectors are noise. The kernels read
// x once more than that (forward: statistics then y; backward: sums then dx), so the best GB/s a
// two-pass kernel can show is about 2/3 (forward) or 3/5 (backward) of the copy bandwidth.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gpu_benchmark.hpp"
#include "resnet50_shapes.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/batch_norm.hpp"
#include "cuda/cudnn_batch_norm.hpp"
#endif

namespace {

using namespace cudagrad;

enum class Pass { Forward, EvalForward, Backward };

const char* pass_name(Pass pass) {
    switch (pass) {
        case Pass::Forward: return "batch_norm_forward";
        case Pass::EvalForward: return "batch_norm_eval_forward";
        case Pass::Backward: return "batch_norm_backward";
    }
    return "?";
}

#ifdef CUDAGRAD_WITH_CUDA
// Inputs on the CPU (for the reference) and on the GPU, and every output buffer.
struct Buffers {
    Shape shape;
    std::int64_t channels, plane;
    Tensor x_cpu, dy_cpu, weight_cpu, bias_cpu, mean_cpu, var_cpu;
    Tensor x, dy, weight, bias, running_mean, running_var, y, dx, dweight, dbias, saved_mean, saved_inverse_std,
        scratch;
    std::int64_t scratch_bytes = 0;
    cuda::BatchNormForward forward;
    cuda::BatchNormBackward backward;

    Buffers(const bench::ActivationShape& activation, std::int64_t batch) {
        const Device device = Device::cuda(0);
        channels = activation.channels;
        plane = activation.size * activation.size;
        shape = {batch, channels, activation.size, activation.size};
        x_cpu = bench::random_cpu(shape, 1, -1.0, 3.0);
        dy_cpu = bench::random_cpu(shape, 2, -1.0, 1.0);
        weight_cpu = bench::random_cpu({channels}, 3, 0.5, 1.5);
        bias_cpu = bench::random_cpu({channels}, 4, -1.0, 1.0);
        mean_cpu = bench::random_cpu({channels}, 5, -1.0, 1.0);
        var_cpu = bench::random_cpu({channels}, 6, 0.5, 2.0);
        x = x_cpu.to(device);
        dy = dy_cpu.to(device);
        weight = weight_cpu.to(device);
        bias = bias_cpu.to(device);
        running_mean = mean_cpu.clone().to(device);
        running_var = var_cpu.clone().to(device);
        y = Tensor::empty(shape, DType::Float32, device);
        dx = Tensor::empty(shape, DType::Float32, device);
        dweight = Tensor::empty({channels}, DType::Float32, device);
        dbias = Tensor::empty({channels}, DType::Float32, device);
        saved_mean = Tensor::empty({channels}, DType::Float32, device);
        saved_inverse_std = Tensor::empty({channels}, DType::Float32, device);
        scratch_bytes = cuda::batch_norm_scratch_bytes(batch, channels, plane);
        scratch = Tensor::empty({(scratch_bytes + 3) / 4}, DType::Float32, device);

        forward.x = x.data<float>();
        forward.y = y.data<float>();
        forward.weight = weight.data<float>();
        forward.bias = bias.data<float>();
        forward.saved_mean = saved_mean.data<float>();
        forward.saved_inverse_std = saved_inverse_std.data<float>();
        forward.running_mean = running_mean.data<float>();
        forward.running_var = running_var.data<float>();
        forward.batch = batch;
        forward.channels = channels;
        forward.plane = plane;

        backward.dy = dy.data<float>();
        backward.x = x.data<float>();
        backward.saved_mean = saved_mean.data<float>();
        backward.saved_inverse_std = saved_inverse_std.data<float>();
        backward.weight = weight.data<float>();
        backward.dx = dx.data<float>();
        backward.dweight = dweight.data<float>();
        backward.dbias = dbias.data<float>();
        backward.batch = batch;
        backward.channels = channels;
        backward.plane = plane;
    }

    void run(Pass pass, bool vendor) {
        switch (pass) {
            case Pass::Forward:
                if (vendor) {
                    cuda::cudnn_batch_norm_forward_training(forward);
                } else {
                    cuda::batch_norm_forward_training(forward, scratch.raw_data(), scratch_bytes);
                }
                break;
            case Pass::EvalForward:
                if (vendor) {
                    cuda::cudnn_batch_norm_forward_inference(forward);
                } else {
                    cuda::batch_norm_forward_inference(forward, scratch.raw_data(), scratch_bytes);
                }
                break;
            case Pass::Backward:
                if (vendor) {
                    cuda::cudnn_batch_norm_backward(backward, forward.eps);
                } else {
                    cuda::batch_norm_backward(backward, scratch.raw_data(), scratch_bytes);
                }
                break;
        }
    }

    // The CPU op's result for what run(pass) computes: y, or dx of the training backward.
    Tensor reference(Pass pass) const {
        BatchNormOptions options;
        options.training = pass != Pass::EvalForward;
        Tensor input = x_cpu.clone().set_requires_grad(pass == Pass::Backward);
        Tensor mean = mean_cpu.clone(), variance = var_cpu.clone();
        const Tensor output = batch_norm2d(input, weight_cpu, bias_cpu, mean, variance, Tensor(), options);
        if (pass != Pass::Backward) return output;
        output.backward(dy_cpu);
        return input.grad();
    }
};
#endif

void batch_norm_case(benchmark::State& state, Pass pass, bench::ActivationShape activation, std::int64_t batch,
                     bool vendor) {
    if (!bench::gpu_ready(state)) return;
#ifdef CUDAGRAD_WITH_CUDA
    make_device_current(Device::cuda(0));
    {
        Buffers check(activation, 2);
        if (pass == Pass::Backward) check.run(Pass::Forward, false);  // the saved statistics
        check.run(pass, vendor);
        const Tensor& actual = pass == Pass::Backward ? check.dx : check.y;
        if (!bench::passes_check(state, actual, check.reference(pass), 1e-4, 1e-4)) return;
    }
    Buffers buffers(activation, batch);
    if (pass == Pass::Backward) buffers.run(Pass::Forward, false);
    const double mean_ms = bench::time_on_gpu(state, [&] { buffers.run(pass, vendor); });
    const double elements = static_cast<double>(batch * activation.channels * activation.size * activation.size);
    const double bytes = (pass == Pass::Backward ? 12.0 : 8.0) * elements;
    bench::report(state, bench::case_key(pass_name(pass), activation.name, batch), mean_ms, 0.0, bytes, vendor);
#else
    (void)pass, (void)activation, (void)batch, (void)vendor;
#endif
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    cudagrad::bench::add_device_context();
    for (const Pass pass : {Pass::Forward, Pass::EvalForward, Pass::Backward}) {
        for (const auto& activation : cudagrad::bench::resnet50_activations()) {
            for (const std::int64_t batch : cudagrad::bench::benchmark_batches()) {
                for (const bool vendor : {true, false}) {  // the vendor first, for vs_vendor
                    const std::string name = cudagrad::bench::case_key(pass_name(pass), activation.name, batch) +
                                             (vendor ? "/cudnn" : "/cuda");
                    auto run = [pass, activation, batch, vendor](benchmark::State& state) {
                        batch_norm_case(state, pass, activation, batch, vendor);
                    };
                    cudagrad::bench::register_gpu_case(name, run);
                }
            }
        }
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
