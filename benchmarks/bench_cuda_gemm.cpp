// The GPU GEMM ladder against cuBLAS (src/cuda/gemm.hpp, docs/kernels-gemm-cuda.md).
//
// Cases, "<op>/<shape>/<implementation>" (the vendor case first, so vs_vendor is computed):
//   gemm_fp32/<s>/{cublas, naive, tiled, register_blocked, vectorized, warp_tiled}   s = 1024, 2048, 4096
//   gemm_tf32/<s>/{cublas, tensor_core}
//   gemm_bf16/<s>/{cublas, tensor_core}
//   linear_<product>_<precision>/fc_2048to1000/b<batch>/<implementation>: ResNet-50's classifier,
//     its three products (forward y = x W^T; backward_input dx = dy W; backward_weight
//     dW = dy^T x) at the batches of CUDAGRAD_BENCH_BATCHES.
// Counters: TFLOP/s (2 m n k per product), GB/s of the minimum traffic (A, B read once, C
// written once), vs_vendor = cuBLAS time / this time at the same precision.
//
// Inputs are uniform in [-1, 1) and rounded to bfloat16 values, which are exact in TF32 and
// BF16 too: every precision then multiplies the same numbers exactly and differs only in
// accumulation order, so one reference checks them all (rtol 1e-3, atol 2e-2: a correct
// kernel's accumulation error at k = 4096 is ~1e-3; a wrong index costs ~0.3 per term).
// The reference of the square GEMMs is cuBLAS fp32 on the GPU: checking a 4096^3 product on
// the host (137 GFLOP) would take far longer than the benchmark. cuBLAS fp32 itself is checked
// on its first 64 rows against cpu::gemm. The linear shapes are checked against cpu::gemm in
// full (<= 1 GFLOP).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <cudagrad/cudagrad.hpp>

#include "cpu/gemm.hpp"
#include "gpu_benchmark.hpp"
#include "resnet50_shapes.hpp"

#ifdef CUDAGRAD_WITH_CUDA
#include "cuda/gemm.hpp"
#endif

namespace cudagrad::bench {
namespace {

#ifdef CUDAGRAD_WITH_CUDA

constexpr double check_rtol = 1e-3, check_atol = 2e-2;

float round_to_bf16(float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    bits = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
    float rounded;
    std::memcpy(&rounded, &bits, sizeof rounded);
    return rounded;
}

// A CPU matrix of bf16-representable values in [-1, 1).
Tensor bf16_values(const Shape& shape, std::uint64_t seed) {
    Tensor tensor = random_cpu(shape, seed);
    float* values = tensor.data<float>();
    for (std::int64_t i = 0; i < tensor.numel(); ++i) values[i] = round_to_bf16(values[i]);
    return tensor;
}

// One GEMM shape with its inputs on both devices and, once computed, the reference output.
struct Workload {
    cuda::GemmProblem problem;  // a, b point into the GPU tensors; c is set per run
    Tensor a_cpu, b_cpu, a_gpu, b_gpu;
    Tensor reference;  // CPU, m x n; undefined until the first check needs it
};

Workload make_workload(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
                       std::uint64_t seed) {
    Workload work;
    work.a_cpu = bf16_values(transpose_a ? Shape{k, m} : Shape{m, k}, seed);
    work.b_cpu = bf16_values(transpose_b ? Shape{n, k} : Shape{k, n}, seed + 1);
    work.a_gpu = work.a_cpu.to(Device::cuda(0));
    work.b_gpu = work.b_cpu.to(Device::cuda(0));
    cuda::GemmProblem& p = work.problem;
    p.transpose_a = transpose_a;
    p.transpose_b = transpose_b;
    p.m = m;
    p.n = n;
    p.k = k;
    p.a = work.a_gpu.data<float>();
    p.lda = transpose_a ? m : k;
    p.b = work.b_gpu.data<float>();
    p.ldb = transpose_b ? k : n;
    p.ldc = n;
    return work;
}

// Workloads live for the whole run (inputs are made once per shape, not per case).
Workload& workload(const std::string& key, bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n,
                   std::int64_t k) {
    static std::map<std::string, std::unique_ptr<Workload>> cache;
    auto& slot = cache[key];
    if (!slot) slot = std::make_unique<Workload>(make_workload(transpose_a, transpose_b, m, n, k, 1000 + cache.size()));
    return *slot;
}

// The CPU product of the first `rows` rows of op(A) with op(B).
Tensor cpu_product(const Workload& work, std::int64_t rows) {
    const cuda::GemmProblem& p = work.problem;
    Tensor c = Tensor::empty({rows, p.n});
    // Rows of op(A): contiguous rows of A, or the first `rows` columns of A^T (same lda).
    cpu::gemm<float>(p.transpose_a ? cpu::Transpose::Yes : cpu::Transpose::No,
                     p.transpose_b ? cpu::Transpose::Yes : cpu::Transpose::No, rows, p.n, p.k, 1.0f,
                     work.a_cpu.data<float>(), p.lda, work.b_cpu.data<float>(), p.ldb, 0.0f, c.data<float>(), p.n);
    return c;
}

struct Case {
    std::string op, shape, implementation;  // name = op/shape/implementation
    MathMode mode;
    bool transpose_a, transpose_b;
    std::int64_t m, n, k;
    bool gpu_reference;  // square GEMMs: check against cuBLAS fp32; else against cpu::gemm in full
};

void run_case(benchmark::State& state, const Case& c) {
    if (!gpu_ready(state)) return;
    const std::string key = c.op + "/" + c.shape;
    const bool is_vendor = c.implementation == "cublas";
    Workload& work = workload(c.shape + (c.transpose_a ? "/ta" : "") + (c.transpose_b ? "/tb" : ""), c.transpose_a,
                              c.transpose_b, c.m, c.n, c.k);
    Tensor output = Tensor::empty({c.m, c.n}, DType::Float32, Device::cuda(0));
    cuda::GemmProblem problem = work.problem;
    problem.c = output.data<float>();
    auto body = [&] { cuda::gemm(problem, c.implementation, c.mode); };

    // Correctness first: one run, compared with the reference.
    if (!work.reference.defined()) {
        if (c.gpu_reference) {
            Tensor vendor = Tensor::empty({c.m, c.n}, DType::Float32, Device::cuda(0));
            cuda::GemmProblem fp32 = work.problem;
            fp32.c = vendor.data<float>();
            cuda::gemm(fp32, "cublas", MathMode::FP32);
            const std::int64_t rows = std::min<std::int64_t>(64, c.m);
            if (!passes_check(state, vendor.slice(0, 0, rows).contiguous(), cpu_product(work, rows), check_rtol,
                              check_atol))
                return;
            work.reference = vendor.to(Device::cpu());
        } else {
            work.reference = cpu_product(work, c.m);
        }
    }
    body();
    if (!passes_check(state, output, work.reference, check_rtol, check_atol)) return;

    const double mean_ms = time_on_gpu(state, body);
    const double flops = 2.0 * static_cast<double>(c.m) * static_cast<double>(c.n) * static_cast<double>(c.k);
    const double bytes = 4.0 * static_cast<double>(c.m * c.k + c.k * c.n + c.m * c.n);
    report(state, key, mean_ms, flops, bytes, is_vendor);
}

std::vector<Case> all_cases() {
    std::vector<Case> cases;
    const std::vector<const char*> simt = {"cublas", "naive", "tiled", "register_blocked", "vectorized", "warp_tiled"};
    const std::vector<std::pair<const char*, MathMode>> tensor_precisions = {{"tf32", MathMode::TF32},
                                                                             {"bf16", MathMode::BF16}};
    for (std::int64_t size : {1024, 2048, 4096}) {
        const std::string shape = std::to_string(size);
        for (const char* implementation : simt)
            cases.push_back({"gemm_fp32", shape, implementation, MathMode::FP32, false, false, size, size, size, true});
        for (const auto& [precision, mode] : tensor_precisions)
            for (const char* implementation : {"cublas", "tensor_core"})
                cases.push_back({std::string("gemm_") + precision, shape, implementation, mode, false, false, size, size,
                                 size, true});
    }
    // ResNet-50's classifier: 2048 features -> 1000 classes.
    constexpr std::int64_t in = 2048, out = 1000;
    struct Product {
        const char* name;
        bool transpose_a, transpose_b;
    };
    const Product products[] = {{"forward", false, true}, {"backward_input", false, false}, {"backward_weight", true, false}};
    for (std::int64_t batch : benchmark_batches()) {
        const std::string shape = "fc_2048to1000/b" + std::to_string(batch);
        for (const Product& product : products) {
            // forward: (batch x in) (out x in)^T; backward_input: (batch x out) (out x in);
            // backward_weight: (batch x out)^T (batch x in).
            std::int64_t m = batch, n = out, k = in;
            if (std::strcmp(product.name, "backward_input") == 0) n = in, k = out;
            if (std::strcmp(product.name, "backward_weight") == 0) m = out, n = in, k = batch;
            const std::string op = std::string("linear_") + product.name;
            for (const char* implementation : simt)
                cases.push_back({op + "_fp32", shape, implementation, MathMode::FP32, product.transpose_a,
                                 product.transpose_b, m, n, k, false});
            for (const auto& [precision, mode] : tensor_precisions)
                for (const char* implementation : {"cublas", "tensor_core"})
                    cases.push_back({op + "_" + precision, shape, implementation, mode, product.transpose_a,
                                     product.transpose_b, m, n, k, false});
        }
    }
    return cases;
}

#endif  // CUDAGRAD_WITH_CUDA

void register_cases() {
#ifdef CUDAGRAD_WITH_CUDA
    for (const Case& c : all_cases()) {
        register_gpu_case(c.op + "/" + c.shape + "/" + c.implementation,
                          [c](benchmark::State& state) { run_case(state, c); });
    }
#else
    benchmark::RegisterBenchmark("gemm/cuda", [](benchmark::State& state) {
        state.SkipWithError("skipped: cudagrad was built without CUDA");
    });
#endif
}

}  // namespace
}  // namespace cudagrad::bench

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    cudagrad::bench::add_device_context();
    cudagrad::bench::register_cases();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
