// cudagrad CPU GEMM micro-kernel for AVX-512F: a 16 x 16 float tile (8 x 16
// double) of C per call. Contract: gemm_microkernel.hpp.
//
// How: C's tile rows are vectorised along j. Each row of the tile is NV
// 512-bit registers (NV = 1 for float: 16 floats; NV = 2 for double), so
// there are 16 accumulators; B's NV vectors of step k and the broadcast A
// value take a few more of the 32 zmm registers. One k step (float) is
//     b = b_panel[k][0:16]                                1 vector load
//     for i < 16: acc[i] += broadcast(a_panel[k][i]) * b  16 broadcasts, 16 FMAs
//
// Napkin math (float, one core of the 2.1 GHz Xeon, turbo above that): two
// 512-bit FMA units give 2 x 16 x 2 = 64 FLOP/cycle, ~134 GFLOP/s at base
// clock. A k step issues 16 FMAs (8 cycles on two ports) and 17 loads (GCC
// folds the broadcasts into vbroadcastss from the L1-resident A panel),
// about the two to three loads per cycle the core sustains. 16 independent
// accumulators cover the FMA latency (4 cycles x 2 ports = 8 in flight). So
// the kernel is bound by the FMA ports, and what the whole GEMM loses comes
// from packing, the C epilogue (once per K block) and zero padding in edge
// tiles. Wider tiles (14 x 32, 8 x 32, ...) need fewer loads per FMA but
// measured no faster overall: see gemm_microkernel.hpp. Double: 8 per
// vector, half the FLOP rate.
//
// Compiled with __attribute__((target("avx512f"))) on these functions only,
// so nothing here runs unless gemm_kernel_supported(GemmKernel::Avx512).
#include <stdexcept>

#include "gemm_microkernel.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

namespace cudagrad::cpu {
namespace {

// One precision's 512-bit vector and the five operations the kernel needs.
// Members are always_inline so the kernel compiles to straight-line
// register code; they carry the target attribute so they may use AVX-512.
template <typename T>
struct Zmm;

template <>
struct Zmm<float> {
  using Vec = __m512;
  static constexpr int width = 16;
  __attribute__((target("avx512f"), always_inline)) static Vec splat(float x) {
    return _mm512_set1_ps(x);
  }
  __attribute__((target("avx512f"), always_inline)) static Vec load(const float* p) {
    return _mm512_loadu_ps(p);
  }
  __attribute__((target("avx512f"), always_inline)) static void store(float* p, Vec v) {
    _mm512_storeu_ps(p, v);
  }
  __attribute__((target("avx512f"), always_inline)) static Vec mul(Vec x, Vec y) {
    return _mm512_mul_ps(x, y);
  }
  // x * y + z with one rounding.
  __attribute__((target("avx512f"), always_inline)) static Vec fma(Vec x, Vec y, Vec z) {
    return _mm512_fmadd_ps(x, y, z);
  }
};

template <>
struct Zmm<double> {
  using Vec = __m512d;
  static constexpr int width = 8;
  __attribute__((target("avx512f"), always_inline)) static Vec splat(double x) {
    return _mm512_set1_pd(x);
  }
  __attribute__((target("avx512f"), always_inline)) static Vec load(const double* p) {
    return _mm512_loadu_pd(p);
  }
  __attribute__((target("avx512f"), always_inline)) static void store(double* p, Vec v) {
    _mm512_storeu_pd(p, v);
  }
  __attribute__((target("avx512f"), always_inline)) static Vec mul(Vec x, Vec y) {
    return _mm512_mul_pd(x, y);
  }
  __attribute__((target("avx512f"), always_inline)) static Vec fma(Vec x, Vec y, Vec z) {
    return _mm512_fmadd_pd(x, y, z);
  }
};

// MR rows x NV vectors; see the file comment. All loops but the k loop have
// compile-time bounds and are fully unrolled, which keeps acc in registers.
template <typename T, int MR, int NV>
__attribute__((target("avx512f"))) void kernel(int64_t kc, const T* __restrict a_panel,
                                               const T* __restrict b_panel, T* __restrict c, int64_t ldc,
                                               T alpha, T beta) {
  using V = Zmm<T>;
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

void micro_kernel_avx512(int64_t kc, const float* a_panel, const float* b_panel, float* c, int64_t ldc,
                         float alpha, float beta) {
  constexpr int NV = Avx512KernelShape<float>::NR / Zmm<float>::width;
  static_assert(NV * Zmm<float>::width == Avx512KernelShape<float>::NR);
  kernel<float, Avx512KernelShape<float>::MR, NV>(kc, a_panel, b_panel, c, ldc, alpha, beta);
}

void micro_kernel_avx512(int64_t kc, const double* a_panel, const double* b_panel, double* c, int64_t ldc,
                         double alpha, double beta) {
  constexpr int NV = Avx512KernelShape<double>::NR / Zmm<double>::width;
  static_assert(NV * Zmm<double>::width == Avx512KernelShape<double>::NR);
  kernel<double, Avx512KernelShape<double>::MR, NV>(kc, a_panel, b_panel, c, ldc, alpha, beta);
}

bool cpu_has_avx512f() {
  __builtin_cpu_init();  // idempotent; needed if we run before libgcc's constructor (a static initialiser)
  return __builtin_cpu_supports("avx512f");
}

}  // namespace cudagrad::cpu

#else  // not x86: no AVX-512, and the selector never calls these.

namespace cudagrad::cpu {

void micro_kernel_avx512(int64_t, const float*, const float*, float*, int64_t, float, float) {
  throw std::logic_error("micro_kernel_avx512: not an x86 build");
}
void micro_kernel_avx512(int64_t, const double*, const double*, double*, int64_t, double, double) {
  throw std::logic_error("micro_kernel_avx512: not an x86 build");
}
bool cpu_has_avx512f() { return false; }

}  // namespace cudagrad::cpu

#endif
