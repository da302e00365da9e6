// cudagrad CPU GEMM micro-kernel for AVX2 + FMA: a 6 x 16 float tile (6 x 8
// double) of C per call. Contract: gemm_microkernel.hpp.
//
// How: C's tile rows are vectorised along j. Each row of the tile is NV = 2
// 256-bit registers (2 x 8 floats), so the 6 x 2 = 12 accumulators plus the
// two B vectors of step k and the broadcast A value use 15 of the 16 ymm
// registers (the classic BLIS Haswell shape; 8 x 8, 12 x 8 and 4 x 24
// measured no faster here). One k step is
//     b0, b1 = b_panel[k][0:8], b_panel[k][8:16]       2 vector loads
//     for i < 6: acc[i][0:2] += broadcast(a_panel[k][i]) * (b0, b1)
//                                                       6 broadcasts, 12 FMAs
//
// Napkin math (float, one core of the 2.1 GHz Xeon): two 256-bit FMA units
// give 2 x 8 x 2 = 32 FLOP/cycle, ~67 GFLOP/s. A k step is 12 FMAs (6 cycles
// on two ports) against 8 loads, and 12 independent accumulators cover the
// FMA latency (4 cycles x 2 ports = 8 in flight), so the FMA ports are the
// limit. Half the AVX-512 kernel's ceiling, but it runs on every x86-64 CPU
// since 2013 (Haswell, Zen). Double: 4 per vector, half the FLOP rate.
//
// Compiled with __attribute__((target("avx2,fma"))) on these functions only,
// so nothing here runs unless gemm_kernel_supported(GemmKernel::Avx2).
#include <stdexcept>

#include "gemm_microkernel.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

namespace cudagrad::cpu {
namespace {

// One precision's 256-bit vector and the five operations the kernel needs.
// Members are always_inline so the kernel compiles to straight-line
// register code; they carry the target attribute so they may use AVX2 and FMA.
template <typename T>
struct Ymm;

template <>
struct Ymm<float> {
  using Vec = __m256;
  static constexpr int width = 8;
  __attribute__((target("avx2,fma"), always_inline)) static Vec splat(float x) {
    return _mm256_set1_ps(x);
  }
  __attribute__((target("avx2,fma"), always_inline)) static Vec load(const float* p) {
    return _mm256_loadu_ps(p);
  }
  __attribute__((target("avx2,fma"), always_inline)) static void store(float* p, Vec v) {
    _mm256_storeu_ps(p, v);
  }
  __attribute__((target("avx2,fma"), always_inline)) static Vec mul(Vec x, Vec y) {
    return _mm256_mul_ps(x, y);
  }
  // x * y + z with one rounding.
  __attribute__((target("avx2,fma"), always_inline)) static Vec fma(Vec x, Vec y, Vec z) {
    return _mm256_fmadd_ps(x, y, z);
  }
};

template <>
struct Ymm<double> {
  using Vec = __m256d;
  static constexpr int width = 4;
  __attribute__((target("avx2,fma"), always_inline)) static Vec splat(double x) {
    return _mm256_set1_pd(x);
  }
  __attribute__((target("avx2,fma"), always_inline)) static Vec load(const double* p) {
    return _mm256_loadu_pd(p);
  }
  __attribute__((target("avx2,fma"), always_inline)) static void store(double* p, Vec v) {
    _mm256_storeu_pd(p, v);
  }
  __attribute__((target("avx2,fma"), always_inline)) static Vec mul(Vec x, Vec y) {
    return _mm256_mul_pd(x, y);
  }
  __attribute__((target("avx2,fma"), always_inline)) static Vec fma(Vec x, Vec y, Vec z) {
    return _mm256_fmadd_pd(x, y, z);
  }
};

// MR rows x NV vectors; see the file comment. All loops but the k loop have
// compile-time bounds and are fully unrolled, which keeps acc in registers.
template <typename T, int MR, int NV>
__attribute__((target("avx2,fma"))) void kernel(int64_t kc, const T* __restrict a_panel,
                                                const T* __restrict b_panel, T* __restrict c, int64_t ldc,
                                                T alpha, T beta) {
  using V = Ymm<T>;
  constexpr int W = V::width;
  typename V::Vec acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = V::splat(T(0));
  }

  for (int64_t k = 0; k < kc; ++k, a_panel += MR, b_panel += NV * W) {
    typename V::Vec b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = V::load(b_panel + v * W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const typename V::Vec a_ik = V::splat(a_panel[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = V::fma(a_ik, b[v], acc[i][v]);
    }
  }

  // C = alpha * acc + beta * C; beta == 0 must not read C (it may be NaN).
  const typename V::Vec alpha_vec = V::splat(alpha);
  if (beta == T(0)) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) V::store(c + i * ldc + v * W, V::mul(alpha_vec, acc[i][v]));
    }
    return;
  }
  const typename V::Vec beta_vec = V::splat(beta);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      T* out = c + i * ldc + v * W;
      V::store(out, V::fma(alpha_vec, acc[i][v], V::mul(beta_vec, V::load(out))));
    }
  }
}

}  // namespace

void micro_kernel_avx2(int64_t kc, const float* a_panel, const float* b_panel, float* c, int64_t ldc,
                       float alpha, float beta) {
  constexpr int NV = Avx2KernelShape<float>::NR / Ymm<float>::width;
  static_assert(NV * Ymm<float>::width == Avx2KernelShape<float>::NR);
  kernel<float, Avx2KernelShape<float>::MR, NV>(kc, a_panel, b_panel, c, ldc, alpha, beta);
}

void micro_kernel_avx2(int64_t kc, const double* a_panel, const double* b_panel, double* c, int64_t ldc,
                       double alpha, double beta) {
  constexpr int NV = Avx2KernelShape<double>::NR / Ymm<double>::width;
  static_assert(NV * Ymm<double>::width == Avx2KernelShape<double>::NR);
  kernel<double, Avx2KernelShape<double>::MR, NV>(kc, a_panel, b_panel, c, ldc, alpha, beta);
}

bool cpu_has_avx2_fma() {
  __builtin_cpu_init();  // idempotent; needed if we run before libgcc's constructor (a static initialiser)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

}  // namespace cudagrad::cpu

#else  // not x86: no AVX2, and the selector never calls these.

namespace cudagrad::cpu {

void micro_kernel_avx2(int64_t, const float*, const float*, float*, int64_t, float, float) {
  throw std::logic_error("micro_kernel_avx2: not an x86 build");
}
void micro_kernel_avx2(int64_t, const double*, const double*, double*, int64_t, double, double) {
  throw std::logic_error("micro_kernel_avx2: not an x86 build");
}
bool cpu_has_avx2_fma() { return false; }

}  // namespace cudagrad::cpu

#endif
