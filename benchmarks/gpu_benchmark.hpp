// What every GPU benchmark shares (Google Benchmark, manual time):
//
//   - GPU cases skip with a message where no GPU is usable; the CPU cases of the same binary run.
//   - Each repetition is timed with CUDA events on the device stream, after the L2 cache has
//     been flushed (a 2x-L2 memset queued before the start event), so inputs come from device
//     memory as they would in a training step. The first call (warm-up: cuDNN plans, cuBLAS
//     heuristics, lazy module loading) is not timed.
//   - Before any timing, the implementation's output is compared with the CPU reference once;
//     a case that fails that check reports an error and no number.
//   - Counters: TFLOP/s or GB/s (as rates over the manual time) and vs_vendor, the ratio of the
//     vendor implementation's time to this one's on the same op and shape (> 1: faster than
//     the vendor), when the vendor case ran earlier in the same process.
//   - The context (printed and in the JSON) names the device, clocks, L2 size, library
//     versions and the commit, for tools/benchmarks_to_markdown.py.
#pragma once

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <cudagrad/cudagrad.hpp>

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/runtime.hpp"
#endif

namespace cudagrad::bench {

// Adds device facts to the benchmark context once (call from main before RunSpecifiedBenchmarks).
inline void add_device_context() {
    benchmark::AddCustomContext("cudagrad_devices", describe_devices());
    if (const char* commit = std::getenv("CUDAGRAD_COMMIT")) benchmark::AddCustomContext("commit", commit);
#ifdef CUDAGRAD_WITH_CUDA
    if (cuda_available()) {
        const cuda::DeviceFacts facts = cuda::device_facts(0);
        benchmark::AddCustomContext("gpu_name", facts.name);
        benchmark::AddCustomContext("gpu_sm_clock_mhz", std::to_string(facts.sm_clock_mhz));
        benchmark::AddCustomContext("gpu_memory_clock_mhz", std::to_string(facts.memory_clock_mhz));
        benchmark::AddCustomContext("gpu_l2_bytes", std::to_string(facts.l2_bytes));
        benchmark::AddCustomContext("gpu_theoretical_bandwidth_gb_s", std::to_string(facts.theoretical_bandwidth_gb_s));
    }
#endif
}

// Registers a GPU case: manual (CUDA event) time, reported in microseconds. `function` takes
// the benchmark::State&. Returns the benchmark for further settings.
template <typename Function>
benchmark::internal::Benchmark* register_gpu_case(const std::string& name, Function&& function) {
    return benchmark::RegisterBenchmark(name.c_str(), std::forward<Function>(function))
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
}

// The key of a case without its implementation, "<op>/<shape>/b<batch>": vs_vendor pairs the
// cases of one key, and the case's name is the key + "/<implementation>".
inline std::string case_key(const std::string& op, const std::string& shape, std::int64_t batch) {
    return op + "/" + shape + "/b" + std::to_string(batch);
}

// Uniform values in [low, high), float32 on the CPU, from a fixed seed (as the tests' random_cpu).
inline Tensor random_cpu(const Shape& shape, std::uint64_t seed, double low = -1.0, double high = 1.0) {
    Generator generator(seed);
    Tensor tensor = Tensor::empty(shape, DType::Float32);
    uniform_(tensor, low, high, generator);
    return tensor;
}

// False (and the case marked skipped, with the reason) where no GPU is usable.
inline bool gpu_ready(benchmark::State& state) {
    if (cuda_available()) return true;
    state.SkipWithError("skipped: no usable GPU on this machine (GPU case)");
    return false;
}

// Compares a GPU result with the CPU reference, |a - e| <= atol + rtol |e| everywhere; on
// failure marks the case as an error (so no time is reported) and returns false.
inline bool passes_check(benchmark::State& state, const Tensor& actual, const Tensor& expected, double rtol,
                         double atol) {
    if (actual.shape() != expected.shape()) {
        state.SkipWithError(("correctness check failed: shape " + shape_string(actual.shape()) + " vs " +
                             shape_string(expected.shape()) + "; not timed")
                                .c_str());
        return false;
    }
    const std::vector<double> a = actual.to_double_vector(), e = expected.to_double_vector();
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!(std::abs(a[i] - e[i]) <= atol + rtol * std::abs(e[i]))) {
            const std::string message = "correctness check failed at element " + std::to_string(i) + ": " +
                                        std::to_string(a[i]) + " vs reference " + std::to_string(e[i]) +
                                        "; not timed";
            state.SkipWithError(message.c_str());
            return false;
        }
    }
    return true;
}

// Vendor times by case key ("conv2d_forward/layer1_3x3_64to64_56/b128"), in milliseconds.
inline std::map<std::string, double>& vendor_times() {
    static std::map<std::string, double> times;
    return times;
}

// Runs body() once untimed, then times each iteration with CUDA events (L2 flushed before each)
// and reports the manual time. Returns the mean milliseconds per iteration.
template <typename Body>
double time_on_gpu(benchmark::State& state, Body&& body) {
#ifdef CUDAGRAD_WITH_CUDA
    body();
    synchronize(Device::cuda(0));
    cuda::StreamTimer timer(0);
    double total_ms = 0.0;
    std::int64_t iterations = 0;
    for (auto _ : state) {
        cuda::flush_l2_cache(0);
        timer.start();
        body();
        timer.stop();
        const double ms = timer.milliseconds();
        state.SetIterationTime(ms / 1e3);
        total_ms += ms;
        ++iterations;
    }
    return iterations ? total_ms / static_cast<double>(iterations) : 0.0;
#else
    (void)body;
    state.SkipWithError("skipped: cudagrad was built without CUDA");
    return 0.0;
#endif
}

// Sets the rate counters (per second of manual time) and, when `key` has a vendor time, the
// vs_vendor ratio. `is_vendor` records this case's time as the vendor's for `key`.
inline void report(benchmark::State& state, const std::string& key, double mean_ms, double flops, double bytes,
                   bool is_vendor) {
    if (state.error_occurred() || mean_ms <= 0.0) return;
    if (flops > 0) state.counters["TFLOP/s"] = flops / (mean_ms * 1e-3) / 1e12;
    if (bytes > 0) state.counters["GB/s"] = bytes / (mean_ms * 1e-3) / 1e9;
    if (is_vendor) vendor_times()[key] = mean_ms;
    auto vendor = vendor_times().find(key);
    if (vendor != vendor_times().end()) state.counters["vs_vendor"] = vendor->second / mean_ms;
}

}  // namespace cudagrad::bench
