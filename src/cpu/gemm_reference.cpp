// cudagrad CPU GEMM, reference implementation (the oracle), plus the
// argument check and the implementation dispatch shared by all GEMMs, and
// the run-time choice of gemm_blocked's micro-kernel (GemmKernel).
//
// What it computes (see gemm.hpp for the full contract):
//     C[i][j] = alpha * sum_k op(A)[i][k] * op(B)[k][j] + beta * C[i][j]
// for 0 <= i < M, 0 <= j < N, 0 <= k < K, all matrices row-major.
// This is the definition written as three loops, in the order i, j, k, so
// that each C element is one dot product read straight off the formula. It
// accumulates in T, in order k = 0, 1, ..., K-1. gemm_blocked and
// gemm_openblas must agree with it to within rounding
// (|x - ref| <= atol + rtol * |ref|, see tests/test_gemm.cpp).
//
// Why it is slow (~1-2 GFLOP/s where gemm_blocked does 100-250 on 2 cores):
//   * The inner k loop walks B down a column: with tb == No every step jumps
//     ldb elements, touching a new cache line, so for big N each multiply-add
//     waits on memory.
//   * Nothing is reused: every A and B element is loaded again for each of
//     the N (resp. M) dot products it takes part in, 2*M*N*K loads in total
//     instead of the ~M*K + K*N a blocked GEMM gets close to.
//   * The sum over k is a serial dependency chain. Vectorising it would
//     reorder the additions, which IEEE semantics (no -ffast-math) forbid,
//     so the loop runs one scalar multiply-add per FP-add latency (~4 cycles).
//   * One thread.
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "gemm.hpp"
#include "gemm_microkernel.hpp"

namespace cudagrad::cpu {

template <typename T>
void gemm_reference(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                    int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  detail::check_gemm_args("gemm_reference", ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
  // op(A)[i][k] and op(B)[k][j] as strides: transposing just swaps them.
  const int64_t a_row_stride = (ta == Transpose::No) ? lda : 1;
  const int64_t a_col_stride = (ta == Transpose::No) ? 1 : lda;
  const int64_t b_row_stride = (tb == Transpose::No) ? ldb : 1;
  const int64_t b_col_stride = (tb == Transpose::No) ? 1 : ldb;

  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      T sum = 0;
      if (alpha != T(0)) {  // BLAS rule: alpha == 0 means A and B are not read
        for (int64_t k = 0; k < K; ++k) {
          sum += A[i * a_row_stride + k * a_col_stride] * B[k * b_row_stride + j * b_col_stride];
        }
      }
      T& c = C[i * ldc + j];
      // BLAS rule: beta == 0 means C is not read, so NaN in C cannot leak out.
      c = (beta == T(0)) ? alpha * sum : alpha * sum + beta * c;
    }
  }
}

template void gemm_reference<float>(Transpose, Transpose, int64_t, int64_t, int64_t, float, const float*,
                                    int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm_reference<double>(Transpose, Transpose, int64_t, int64_t, int64_t, double, const double*,
                                     int64_t, const double*, int64_t, double, double*, int64_t);

// ---------------------------------------------------------------------------
// Argument check shared by every implementation.

namespace detail {

void check_gemm_args(const char* function, Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K,
                     const void* A, int64_t lda, const void* B, int64_t ldb, const void* C, int64_t ldc) {
  const std::string name = function;
  if (M < 0 || N < 0 || K < 0) {
    throw std::invalid_argument(name + ": sizes must be >= 0, got M=" + std::to_string(M) +
                                ", N=" + std::to_string(N) + ", K=" + std::to_string(K));
  }
  // Row-major: the leading dimension must cover one stored row. Like BLAS we
  // also demand >= 1 for empty matrices.
  auto check_leading_dim = [&](const char* ld_name, int64_t ld, const char* matrix, int64_t rows,
                               int64_t cols) {
    if (ld < 1 || ld < cols) {
      throw std::invalid_argument(name + ": " + ld_name + "=" + std::to_string(ld) + " is too small: " +
                                  matrix + " is stored as " + std::to_string(rows) + " x " +
                                  std::to_string(cols) + " (row-major), so " + ld_name + " must be >= " +
                                  std::to_string(cols > 1 ? cols : 1));
    }
  };
  if (ta == Transpose::No) {
    check_leading_dim("lda", lda, "A", M, K);
  } else {
    check_leading_dim("lda", lda, "A (transposed)", K, M);
  }
  if (tb == Transpose::No) {
    check_leading_dim("ldb", ldb, "B", K, N);
  } else {
    check_leading_dim("ldb", ldb, "B (transposed)", N, K);
  }
  check_leading_dim("ldc", ldc, "C", M, N);

  const bool c_used = M > 0 && N > 0;
  if (c_used && C == nullptr) throw std::invalid_argument(name + ": C is null but M x N is not empty");
  if (c_used && K > 0 && (A == nullptr || B == nullptr)) {
    throw std::invalid_argument(name + ": A or B is null but M=" + std::to_string(M) + ", N=" +
                                std::to_string(N) + ", K=" + std::to_string(K) + " is not empty");
  }
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Implementation choice. Lives here because this file is always built.

namespace {

// -1 = not chosen yet; the first gemm_impl() call reads CUDAGRAD_GEMM.
std::atomic<int> selected_impl{-1};

void require_available(GemmImpl impl, const std::string& who) {
  if (impl == GemmImpl::OpenBlas && !openblas_available()) {
    throw std::runtime_error(who + " asks for the OpenBLAS GEMM, but cudagrad was built without OpenBLAS "
                             "(rebuild with CUDAGRAD_HAVE_OPENBLAS defined and -lopenblas)");
  }
}

GemmImpl initial_gemm_impl() {
  if (const char* text = std::getenv("CUDAGRAD_GEMM")) {
    const GemmImpl impl = gemm_impl_from_name(text);
    require_available(impl, std::string("CUDAGRAD_GEMM=") + text);
    return impl;
  }
  return automatic_gemm_impl();
}

// -1 = not chosen yet; the first gemm_kernel() call reads CUDAGRAD_GEMM_KERNEL.
std::atomic<int> selected_kernel{-1};

void require_supported(GemmKernel kernel, const std::string& who) {
  if (!gemm_kernel_supported(kernel)) {
    throw std::runtime_error(who + " asks for the " + gemm_kernel_name(kernel) +
                             " GEMM kernel, but this CPU does not support it (best available: " +
                             gemm_kernel_name(best_gemm_kernel()) + ")");
  }
}

GemmKernel initial_gemm_kernel() {
  if (const char* text = std::getenv("CUDAGRAD_GEMM_KERNEL")) {
    const GemmKernel kernel = gemm_kernel_from_name(text);
    require_supported(kernel, std::string("CUDAGRAD_GEMM_KERNEL=") + text);
    return kernel;
  }
  return best_gemm_kernel();
}

}  // namespace

const char* gemm_impl_name(GemmImpl impl) {
  switch (impl) {
    case GemmImpl::Reference: return "reference";
    case GemmImpl::Blocked: return "blocked";
    case GemmImpl::OpenBlas: return "openblas";
  }
  return "unknown";
}

GemmImpl gemm_impl_from_name(const std::string& name) {
  for (GemmImpl impl : {GemmImpl::Reference, GemmImpl::Blocked, GemmImpl::OpenBlas}) {
    if (name == gemm_impl_name(impl)) return impl;
  }
  throw std::invalid_argument("cudagrad: unknown GEMM implementation '" + name +
                              "' (CUDAGRAD_GEMM must be reference, blocked or openblas)");
}

GemmImpl automatic_gemm_impl() {
  // With AVX2+FMA our blocked GEMM beats the OpenBLAS that Debian ships
  // (0.3.21 misdetects recent Xeons and runs its SSE3 kernels there; see
  // docs/gemm-cpu.md). Without, OpenBLAS's tuned kernels beat our portable one.
  if (gemm_kernel_supported(GemmKernel::Avx2)) return GemmImpl::Blocked;
  return openblas_available() ? GemmImpl::OpenBlas : GemmImpl::Blocked;
}

void set_gemm_impl(GemmImpl impl) {
  require_available(impl, "set_gemm_impl");
  selected_impl.store(static_cast<int>(impl));
}

GemmImpl gemm_impl() {
  int current = selected_impl.load();
  if (current < 0) {
    int unset = -1;  // a concurrent set_gemm_impl() wins over the environment default
    selected_impl.compare_exchange_strong(unset, static_cast<int>(initial_gemm_impl()));
    current = selected_impl.load();
  }
  return static_cast<GemmImpl>(current);
}

bool gemm_kernel_supported(GemmKernel kernel) {
  switch (kernel) {
    case GemmKernel::Portable: return true;
    case GemmKernel::Avx2: return cpu_has_avx2_fma();
    case GemmKernel::Avx512: return cpu_has_avx512f();
  }
  return false;
}

GemmKernel best_gemm_kernel() {
  for (GemmKernel kernel : {GemmKernel::Avx512, GemmKernel::Avx2}) {
    if (gemm_kernel_supported(kernel)) return kernel;
  }
  return GemmKernel::Portable;
}

const char* gemm_kernel_name(GemmKernel kernel) {
  switch (kernel) {
    case GemmKernel::Portable: return "portable";
    case GemmKernel::Avx2: return "avx2";
    case GemmKernel::Avx512: return "avx512";
  }
  return "unknown";
}

GemmKernel gemm_kernel_from_name(const std::string& name) {
  for (GemmKernel kernel : {GemmKernel::Portable, GemmKernel::Avx2, GemmKernel::Avx512}) {
    if (name == gemm_kernel_name(kernel)) return kernel;
  }
  throw std::invalid_argument("cudagrad: unknown GEMM kernel '" + name +
                              "' (CUDAGRAD_GEMM_KERNEL must be portable, avx2 or avx512)");
}

void set_gemm_kernel(GemmKernel kernel) {
  require_supported(kernel, "set_gemm_kernel");
  selected_kernel.store(static_cast<int>(kernel));
}

GemmKernel gemm_kernel() {
  int current = selected_kernel.load();
  if (current < 0) {
    int unset = -1;  // a concurrent set_gemm_kernel() wins over the environment default
    selected_kernel.compare_exchange_strong(unset, static_cast<int>(initial_gemm_kernel()));
    current = selected_kernel.load();
  }
  return static_cast<GemmKernel>(current);
}

template <typename T>
void gemm(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  switch (gemm_impl()) {
    case GemmImpl::Reference: return gemm_reference(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    case GemmImpl::Blocked: return gemm_blocked(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    case GemmImpl::OpenBlas: return gemm_openblas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

template void gemm<float>(Transpose, Transpose, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(Transpose, Transpose, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

}  // namespace cudagrad::cpu
