// conv2d on the GPU: forward, backward data and backward weight for every ResNet-50 layer shape
// (benchmarks/resnet50_shapes.hpp) and batch (CUDAGRAD_BENCH_BATCHES, default 128), for cuDNN
// (the vendor) and each hand-written version, in each precision:
//
//   precision  implementations (vendor first)
//   fp32       cudnn, direct, implicit_gemm
//   tf32       cudnn, tensor_core
//   bf16       cudnn, tensor_core      (cuDNN's case is skipped where it has no bf16 algorithm)
//
// Case names: "conv2d_<pass>_<precision>/<layer>/b<batch>/<implementation>", e.g.
// "conv2d_forward_tf32/layer1_3x3_64to64_56/b128/tensor_core"; vs_vendor compares with the
// cudnn case of the same pass, precision, layer and batch. Counters: TFLOP/s (2 x multiply-adds,
// taps on padding included, the same count for all three passes) and GB/s of the minimum
// traffic (read both inputs once, write the output once).
//
// Before timing, each implementation runs once at batch 2 (full spatial size) on inputs in
// eighths (see tests/test_cuda_conv2d.cpp: exact in every precision) and is compared with the
// CPU reference; a mismatch reports an error and no time. The direct kernel is skipped where a
// rough model (kernels/conv2d_direct.cu: ~1 TFLOP/s, and for backward weight each thread's
// serial loop over N*P*Q at ~60 ns a step) says one call would take more than a second; the
// skip message gives the estimate.
//
// Usage: bench_cuda_conv2d [--benchmark_filter=conv2d_forward_tf32/layer1] [--benchmark_min_time=0.1]
// Without a GPU every case reports "skipped" and the binary exits 0.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <cudagrad/cudagrad.hpp>

#include "gpu_benchmark.hpp"
#include "resnet50_shapes.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cpu/conv2d.hpp"
#include "cuda/conv2d.hpp"
#include "cuda/cudnn_conv2d.hpp"
#include "cuda/runtime.hpp"
#include "registry_internal.hpp"
#endif

namespace cudagrad::bench {
namespace {

struct Precision {
    const char* name;
    MathMode mode;
    std::vector<const char*> implementations;  // the vendor's first
};

const std::vector<Precision>& precisions() {
    static const std::vector<Precision> list = {
        {"fp32", MathMode::FP32, {"cudnn", "direct", "implicit_gemm"}},
        {"tf32", MathMode::TF32, {"cudnn", "tensor_core"}},
        {"bf16", MathMode::BF16, {"cudnn", "tensor_core"}},
    };
    return list;
}

#ifdef CUDAGRAD_WITH_CUDA
using cuda::ConvPass;
using cuda::ConvProblem;

const std::vector<ConvPass>& passes() {
    static const std::vector<ConvPass> list = {ConvPass::Forward, ConvPass::BackwardData, ConvPass::BackwardWeight};
    return list;
}

ConvProblem problem_for(const ConvLayer& layer, std::int64_t batch) {
    ConvProblem p;
    p.N = batch;
    p.C = layer.channels;
    p.H = p.W = layer.size;
    p.K = layer.out_channels;
    p.R = p.S = layer.kernel;
    p.stride_h = p.stride_w = layer.stride;
    p.pad_h = p.pad_w = layer.padding();
    p.P = p.Q = layer.out_size();
    return p;
}

cpu::ConvGeometry geometry_for(const ConvProblem& p) {
    cpu::ConvGeometry g;
    g.batch = p.N;
    g.in_channels = p.C;
    g.in_height = p.H;
    g.in_width = p.W;
    g.out_channels = p.K;
    g.kernel_height = p.R;
    g.kernel_width = p.S;
    g.out_height = p.P;
    g.out_width = p.Q;
    g.stride_height = p.stride_h;
    g.stride_width = p.stride_w;
    g.padding_height = p.pad_h;
    g.padding_width = p.pad_w;
    return g;
}

// Values k/8, k in [-8, 8], from a fixed seed.
std::vector<float> eighths(std::int64_t count, std::uint64_t seed) {
    std::vector<float> result = random_cpu({count}, seed).to_float_vector();
    for (float& value : result) value = std::round(value * 8.0f) / 8.0f;
    return result;
}

// A GPU tensor of `count` values, filled by repeating a 1M-value block of eighths (the values
// do not matter for timing; generating 100M+ random values on the CPU per layer would).
Tensor gpu_filled(std::int64_t count, std::uint64_t seed) {
    static const std::vector<float> block = eighths(std::int64_t{1} << 20, 99);
    Tensor tensor = Tensor::empty({count}, DType::Float32, Device::cuda(0));
    auto* base = static_cast<char*>(tensor.raw_data());
    const std::int64_t block_size = static_cast<std::int64_t>(block.size());
    for (std::int64_t done = 0; done < count; done += block_size) {
        const std::int64_t n = std::min(block_size, count - done);
        const auto choices = static_cast<std::uint64_t>(block_size - n + 1);  // where the slice may start
        const auto start = static_cast<std::int64_t>((seed * 7919) % choices);
        cuda::copy_host_to_device(base + done * 4, block.data() + start, static_cast<std::size_t>(n) * 4);
    }
    return tensor;
}

Tensor gpu_from(const std::vector<float>& values) {
    return Tensor::from_vector(values, {static_cast<std::int64_t>(values.size())}).to(Device::cuda(0));
}

// The batch-2 check of one layer: inputs and the CPU references of the three passes (kept for
// the layer's cases, which are registered one after the other).
struct CheckData {
    std::string layer;
    ConvProblem problem;
    Tensor x, w, dy;              // on the GPU
    Tensor y_ref, dx_ref, dw_ref;  // on the CPU
};

const CheckData& check_data(const ConvLayer& layer) {
    static CheckData& data = *new CheckData;  // never destroyed: no device frees after CUDA's teardown
    if (data.layer == layer.name) return data;
    data = CheckData{};
    data.layer = layer.name;
    data.problem = problem_for(layer, 2);
    const ConvProblem& p = data.problem;
    const std::vector<float> x = eighths(p.x_count(), 1), w = eighths(p.w_count(), 2), dy = eighths(p.y_count(), 3);
    const cpu::ConvGeometry g = geometry_for(p);
    std::vector<float> y(static_cast<std::size_t>(p.y_count())), dx(static_cast<std::size_t>(p.x_count())),
        dw(static_cast<std::size_t>(p.w_count()));
    cpu::conv2d_forward<float>(g, x.data(), w.data(), nullptr, y.data());
    cpu::conv2d_backward_data<float>(g, dy.data(), w.data(), dx.data());
    cpu::conv2d_backward_weight<float>(g, x.data(), dy.data(), dw.data(), nullptr);
    data.x = gpu_from(x);
    data.w = gpu_from(w);
    data.dy = gpu_from(dy);
    data.y_ref = Tensor::from_vector(y, {p.y_count()});
    data.dx_ref = Tensor::from_vector(dx, {p.x_count()});
    data.dw_ref = Tensor::from_vector(dw, {p.w_count()});
    return data;
}

// Full-size inputs of one layer and batch (one at a time: the next layer's replace them).
struct TimingData {
    std::string key;
    Tensor x, w, dy;
};

const TimingData& timing_data(const ConvLayer& layer, std::int64_t batch) {
    static TimingData& data = *new TimingData;
    const std::string key = std::string(layer.name) + "/" + std::to_string(batch);
    if (data.key == key) return data;
    data = TimingData{};  // free the previous layer's tensors first
    const ConvProblem p = problem_for(layer, batch);
    data.key = key;
    data.x = gpu_filled(p.x_count(), 1);
    data.w = gpu_filled(p.w_count(), 2);
    data.dy = gpu_filled(p.y_count(), 3);
    return data;
}

// Runs one pass of one implementation; cudnn in exactly the given precision (no fallback).
void run_pass(const std::string& implementation, ConvPass pass, MathMode mode, const ConvProblem& p, const Tensor& x,
              const Tensor& w, const Tensor& dy, Tensor& out) {
    const float *xs = x.data<float>(), *ws = w.data<float>(), *dys = dy.data<float>();
    float* o = out.data<float>();
    if (implementation == "cudnn") {
        if (pass == ConvPass::Forward) cuda::cudnn_conv2d_forward(p, mode, xs, ws, o);
        else if (pass == ConvPass::BackwardData) cuda::cudnn_conv2d_backward_data(p, mode, dys, ws, o);
        else cuda::cudnn_conv2d_backward_weight(p, mode, xs, dys, o);
    } else if (pass == ConvPass::Forward) {
        cuda::conv2d_forward(implementation, p, xs, ws, o);
    } else if (pass == ConvPass::BackwardData) {
        cuda::conv2d_backward_data(implementation, p, dys, ws, o);
    } else {
        cuda::conv2d_backward_weight(implementation, p, xs, dys, o);
    }
}

std::int64_t output_count(ConvPass pass, const ConvProblem& p) {
    return pass == ConvPass::Forward ? p.y_count() : pass == ConvPass::BackwardData ? p.x_count() : p.w_count();
}

// The check's tolerance: our kernels are exact on eighths; cuDNN's transform algorithms round
// (the derivation is at the top of tests/test_cuda_conv2d.cpp). L = products per output.
void tolerance(const std::string& implementation, MathMode mode, double L, double* rtol, double* atol) {
    *rtol = implementation == "cudnn" ? 1e-4 : 1e-5;
    *atol = 1e-6 * L + 1e-5;
    if (implementation != "cudnn" || mode == MathMode::FP32) return;
    *rtol = mode == MathMode::TF32 ? 1e-2 : 2e-2;
    *atol = (mode == MathMode::TF32 ? 0.02 : 0.03) * 0.375 * std::sqrt(L);
}

// Seconds one direct-kernel call would take by the rough model of the header.
double direct_estimate_seconds(ConvPass pass, const ConvProblem& p) {
    double seconds = 2.0 * p.macs() / 1e12;
    if (pass == ConvPass::BackwardWeight) {
        const double threads = static_cast<double>(p.w_count()), resident = 132.0 * 2048.0;
        seconds = std::max(seconds, static_cast<double>(p.N * p.P * p.Q) * 60e-9 * std::ceil(threads / resident));
    }
    return seconds;
}
#endif  // CUDAGRAD_WITH_CUDA

void run_case(benchmark::State& state, const ConvLayer& layer, std::int64_t batch, int pass_index,
              const Precision& precision, const std::string& implementation, const std::string& key) {
    if (!gpu_ready(state)) return;
#ifdef CUDAGRAD_WITH_CUDA
    const ConvPass pass = passes()[static_cast<std::size_t>(pass_index)];
    reset_implementations();
    set_math_mode(precision.mode);
    const ConvProblem full = problem_for(layer, batch);
    if (implementation == "direct" && direct_estimate_seconds(pass, full) > 1.0) {
        const std::string message = "skipped: the direct kernel would take ~" +
                                    std::to_string(direct_estimate_seconds(pass, full)) + " s per call (estimate)";
        state.SkipWithError(message.c_str());
        return;
    }
    try {
        const CheckData& check = check_data(layer);
        const ConvProblem& small = check.problem;
        Tensor out = Tensor::empty({output_count(pass, small)}, DType::Float32, Device::cuda(0));
        run_pass(implementation, pass, precision.mode, small, check.x, check.w, check.dy, out);
        const Tensor& expected = pass == ConvPass::Forward ? check.y_ref
                                 : pass == ConvPass::BackwardData ? check.dx_ref : check.dw_ref;
        const double L = pass == ConvPass::Forward ? static_cast<double>(small.C * small.R * small.S)
                         : pass == ConvPass::BackwardData ? static_cast<double>(small.K * small.R * small.S)
                                                          : static_cast<double>(small.N * small.P * small.Q);
        double rtol = 0, atol = 0;
        tolerance(implementation, precision.mode, L, &rtol, &atol);
        if (!passes_check(state, out, expected, rtol, atol)) return;

        const TimingData& data = timing_data(layer, batch);
        Tensor result = Tensor::empty({output_count(pass, full)}, DType::Float32, Device::cuda(0));
        const double mean_ms = time_on_gpu(
            state, [&] { run_pass(implementation, pass, precision.mode, full, data.x, data.w, data.dy, result); });
        const double inputs = pass == ConvPass::Forward ? full.x_count() + full.w_count()
                              : pass == ConvPass::BackwardData ? full.y_count() + full.w_count()
                                                               : full.x_count() + full.y_count();
        const double bytes = 4.0 * (inputs + static_cast<double>(output_count(pass, full)));
        report(state, key, mean_ms, 2.0 * full.macs(), bytes, implementation == "cudnn");
        if (implementation == "cudnn") state.SetLabel(cuda::cudnn_conv2d_choice(full, pass, precision.mode));
    } catch (const detail::VendorDeclined& declined) {
        state.SkipWithError((std::string("skipped: cuDNN declined: ") + declined.what()).c_str());
    }
    reset_implementations();
#else
    (void)layer, (void)batch, (void)pass_index, (void)precision, (void)implementation, (void)key;
#endif
}

const char* pass_name(int pass_index) {
    static const char* names[] = {"forward", "backward_data", "backward_weight"};
    return names[pass_index];
}

}  // namespace
}  // namespace cudagrad::bench

int main(int argc, char** argv) {
    using namespace cudagrad::bench;
    benchmark::Initialize(&argc, argv);
    add_device_context();
    for (const ConvLayer& layer : resnet50_conv_layers()) {
        for (const std::int64_t batch : benchmark_batches()) {
            for (int pass = 0; pass < 3; ++pass) {
                for (const Precision& precision : precisions()) {
                    const std::string key = case_key(std::string("conv2d_") + pass_name(pass) + "_" + precision.name,
                                                     layer.name, batch);
                    for (const char* implementation : precision.implementations) {
                        auto run = [&layer, batch, pass, &precision, implementation, key](benchmark::State& state) {
                            run_case(state, layer, batch, pass, precision, implementation, key);
                        };
                        register_gpu_case(key + "/" + implementation, run);
                    }
                }
            }
        }
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
