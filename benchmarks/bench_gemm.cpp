// GEMM throughput of cudagrad's CPU implementations on real shapes.
//
// What it measures: C = op(A) * op(B) (alpha 1, beta 0) for gemm_reference,
// gemm_blocked with each micro-kernel this CPU supports (blocked-portable,
// blocked-avx2, blocked-avx512; see src/cpu/gemm_microkernel.hpp) and
// gemm_openblas, in FLOP/s = 2*M*N*K / wall time, shown in the "FLOPS"
// column ("24.5G/s" means 24.5 GFLOP/s). Wall time, not CPU time, because
// blocked and OpenBLAS run on several threads.
//
// Shapes: ResNet-50's convolutions lowered to GEMM by im2col at batch 1,
// i.e. M = output channels, N = output height * width, K = input channels *
// kernel height * kernel width; the final fully connected layer at batch 32
// (Y = X * W^T: M=32, N=1000, K=2048, B transposed); and 512^3 as the
// textbook square case.
//
// What limits the numbers: see the header comments of the gemm_*.cpp files
// (reference: memory access pattern, one thread; blocked: the FP ports of
// the kernel's instruction set, plus packing on skinny shapes; OpenBLAS: the
// kernels it picks for the CPU, SSE3 on CPUs that 0.3.21 does not know).
// Thread count: CUDAGRAD_NUM_THREADS, default all cores. Results are only
// comparable on an otherwise idle machine; docs/gemm-cpu.md has a table.
//
// Usage: bench_gemm [--benchmark_filter=blocked-avx512] [--benchmark_min_time=0.2]
//        [--benchmark_repetitions=5 --benchmark_report_aggregates_only=true]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "cpu/gemm.hpp"
#include "cpu/parallel.hpp"

namespace {

using cudagrad::cpu::GemmImpl;
using cudagrad::cpu::GemmKernel;
using cudagrad::cpu::Transpose;

struct GemmShape {
  const char* name;
  int64_t M, N, K;
  Transpose tb;
};

const GemmShape kShapes[] = {
    {"resnet50_conv1_7x7_s2", 64, 112 * 112, 3 * 7 * 7, Transpose::No},
    {"resnet50_layer1_3x3", 64, 56 * 56, 64 * 3 * 3, Transpose::No},
    {"resnet50_layer1_1x1_expand", 256, 56 * 56, 64, Transpose::No},
    {"resnet50_layer2_3x3", 128, 28 * 28, 128 * 3 * 3, Transpose::No},
    {"resnet50_layer3_1x1_reduce", 256, 14 * 14, 1024, Transpose::No},
    {"resnet50_layer4_3x3", 512, 7 * 7, 512 * 3 * 3, Transpose::No},
    {"resnet50_fc_batch32", 32, 1000, 2048, Transpose::Yes},
    {"square_512", 512, 512, 512, Transpose::No},
};

template <typename T>
std::vector<T> random_values(int64_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<T> uniform(T(-1), T(1));
  std::vector<T> values(static_cast<size_t>(count));
  for (T& v : values) v = uniform(rng);
  return values;
}

// One benchmarked variant: an implementation and, for Blocked, its kernel.
struct Variant {
  GemmImpl impl;
  GemmKernel kernel;  // only used when impl == Blocked

  std::string name() const {
    if (impl != GemmImpl::Blocked) return cudagrad::cpu::gemm_impl_name(impl);
    return std::string("blocked-") + cudagrad::cpu::gemm_kernel_name(kernel);
  }
};

template <typename T>
void run_gemm(GemmImpl impl, Transpose tb, int64_t M, int64_t N, int64_t K, const T* A, const T* B, T* C) {
  const int64_t ldb = (tb == Transpose::No) ? N : K;  // B stored K x N, or N x K when transposed
  switch (impl) {
    case GemmImpl::Reference:
      return cudagrad::cpu::gemm_reference<T>(Transpose::No, tb, M, N, K, T(1), A, K, B, ldb, T(0), C, N);
    case GemmImpl::Blocked:
      return cudagrad::cpu::gemm_blocked<T>(Transpose::No, tb, M, N, K, T(1), A, K, B, ldb, T(0), C, N);
    case GemmImpl::OpenBlas:
      return cudagrad::cpu::gemm_openblas<T>(Transpose::No, tb, M, N, K, T(1), A, K, B, ldb, T(0), C, N);
  }
}

template <typename T>
void bench_gemm(benchmark::State& state, Variant variant, GemmShape shape) {
  if (variant.impl == GemmImpl::Blocked) cudagrad::cpu::set_gemm_kernel(variant.kernel);
  const std::vector<T> A = random_values<T>(shape.M * shape.K, 1);
  const std::vector<T> B = random_values<T>(shape.K * shape.N, 2);
  std::vector<T> C(static_cast<size_t>(shape.M * shape.N));
  for (auto _ : state) {
    run_gemm<T>(variant.impl, shape.tb, shape.M, shape.N, shape.K, A.data(), B.data(), C.data());
    benchmark::DoNotOptimize(C.data());
    benchmark::ClobberMemory();
  }
  const double flops_per_call = 2.0 * shape.M * shape.N * shape.K;
  // Iteration-invariant rate: multiplied by the iteration count and divided
  // by the elapsed time, i.e. FLOP/s; kIs1000 gives decimal G (1e9).
  state.counters["FLOPS"] = benchmark::Counter(flops_per_call, benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::OneK::kIs1000);
}

template <typename T>
void register_case(const Variant& variant, const GemmShape& shape, const char* type_name) {
  const std::string name = "gemm/" + variant.name() + "/" + type_name + "/" + shape.name +
                           "/M=" + std::to_string(shape.M) + ",N=" + std::to_string(shape.N) +
                           ",K=" + std::to_string(shape.K);
  benchmark::RegisterBenchmark(name.c_str(), bench_gemm<T>, variant, shape)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Variant> variants = {{GemmImpl::Reference, GemmKernel::Portable}};
  std::string skipped;
  for (GemmKernel kernel : {GemmKernel::Portable, GemmKernel::Avx2, GemmKernel::Avx512}) {
    if (cudagrad::cpu::gemm_kernel_supported(kernel)) {
      variants.push_back({GemmImpl::Blocked, kernel});
    } else {
      skipped += std::string(skipped.empty() ? "" : ",") + cudagrad::cpu::gemm_kernel_name(kernel);
    }
  }
  if (cudagrad::cpu::openblas_available()) variants.push_back({GemmImpl::OpenBlas, GemmKernel::Portable});

  for (const Variant& variant : variants) {
    for (const GemmShape& shape : kShapes) register_case<float>(variant, shape, "float");
  }
  // One double case per variant: FP64 rates are about half of FP32.
  const GemmShape& square = kShapes[std::size(kShapes) - 1];
  for (const Variant& variant : variants) register_case<double>(variant, square, "double");

  benchmark::AddCustomContext("cudagrad_num_threads", std::to_string(cudagrad::cpu::num_threads()));
  benchmark::AddCustomContext("cudagrad_openblas", cudagrad::cpu::openblas_available() ? "yes" : "no");
  benchmark::AddCustomContext("cudagrad_default_gemm",
                              cudagrad::cpu::gemm_impl_name(cudagrad::cpu::automatic_gemm_impl()) +
                                  std::string(" (kernel ") +
                                  cudagrad::cpu::gemm_kernel_name(cudagrad::cpu::best_gemm_kernel()) + ")");
  benchmark::AddCustomContext("cudagrad_kernels_not_supported", skipped.empty() ? "none" : skipped);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
