// cudagrad CPU GEMM via OpenBLAS (cblas_sgemm / cblas_dgemm).
//
// What it computes: exactly gemm.hpp's contract,
//     C = alpha * op(A) * op(B) + beta * C,   row-major, M x N result,
// by handing the call to CBLAS with CblasRowMajor, which takes the same
// (trans, M, N, K, lda, ldb, ldc) arguments we use. It must match
// gemm_reference to within rounding; OpenBLAS sums in a different order (and
// with FMA), so results differ from ours in the last bits.
//
// What limits its speed: OpenBLAS picks hand-written assembly kernels for
// the CPU at load time (Debian builds it with DYNAMIC_ARCH). With AVX-512
// FMA it is bound by the FMA units: 2 FMA/cycle * 16 floats * 2 FLOP = 64
// FLOP/cycle/core, the same bound as gemm_blocked's AVX-512 kernel. Caveat
// seen on the 2-core dev VM: OpenBLAS 0.3.21 does not recognise its Xeon (CPU
// model 207), falls back to the SSE3 "Prescott" kernels and is then 3-6x
// slower than gemm_blocked, which is why blocked is the default wherever the
// CPU has AVX2+FMA (docs/gemm-cpu.md). Setting OPENBLAS_CORETYPE=SkylakeX in
// the environment before the program starts restores OpenBLAS's fast kernels.
// For small or skinny shapes, packing and thread start-up dominate.
//
// Build: define CUDAGRAD_HAVE_OPENBLAS and link libopenblas (Debian:
// libopenblas-dev, which provides <cblas.h>). Without the define every entry
// point throws std::runtime_error and openblas_available() returns false.
//
// Threads: OpenBLAS keeps its own pool. We resize it to num_threads() before
// each call when our setting changed. Call this from the main thread only:
// from inside a parallel_for body it would put OpenBLAS's threads on cores
// our own workers already occupy (oversubscription: several times slower).
#include <atomic>
#include <limits>
#include <stdexcept>
#include <string>

#include "gemm.hpp"
#include "parallel.hpp"

#ifdef CUDAGRAD_HAVE_OPENBLAS
#include <cblas.h>
// Declared by OpenBLAS's cblas.h, but not by the reference (netlib) cblas.h
// that may sit on the include path instead; an identical redeclaration is fine.
extern "C" void openblas_set_num_threads(int num_threads);
#endif

namespace cudagrad::cpu {

bool openblas_available() {
#ifdef CUDAGRAD_HAVE_OPENBLAS
  return true;
#else
  return false;
#endif
}

#ifdef CUDAGRAD_HAVE_OPENBLAS
namespace {

// The thread count OpenBLAS was last told; 0 = never.
std::atomic<int> openblas_threads{0};

void sync_openblas_threads() {
  const int wanted = num_threads();
  if (openblas_threads.exchange(wanted) != wanted) openblas_set_num_threads(wanted);
}

// CBLAS takes 32-bit int sizes (blasint), ours are int64_t.
int to_blas_int(const char* what, int64_t value) {
  if (value > std::numeric_limits<int>::max()) {
    throw std::invalid_argument(std::string("gemm_openblas: ") + what + "=" + std::to_string(value) +
                                " does not fit the 32-bit int that CBLAS takes");
  }
  return static_cast<int>(value);
}

CBLAS_TRANSPOSE to_cblas(Transpose t) { return t == Transpose::No ? CblasNoTrans : CblasTrans; }

// Overloads pick the precision, so gemm_openblas<T> below is one template.
void cblas_gemm(Transpose ta, Transpose tb, int M, int N, int K, float alpha, const float* A, int lda,
                const float* B, int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, to_cblas(ta), to_cblas(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void cblas_gemm(Transpose ta, Transpose tb, int M, int N, int K, double alpha, const double* A, int lda,
                const double* B, int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasRowMajor, to_cblas(ta), to_cblas(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace
#endif

template <typename T>
void gemm_openblas(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                   int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
#ifdef CUDAGRAD_HAVE_OPENBLAS
  detail::check_gemm_args("gemm_openblas", ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
  if (M == 0 || N == 0) return;
  sync_openblas_threads();
  cblas_gemm(ta, tb, to_blas_int("M", M), to_blas_int("N", N), to_blas_int("K", K), alpha, A,
             to_blas_int("lda", lda), B, to_blas_int("ldb", ldb), beta, C, to_blas_int("ldc", ldc));
#else
  (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda;
  (void)B, (void)ldb, (void)beta, (void)C, (void)ldc;
  throw std::runtime_error(
      "gemm_openblas: cudagrad was built without OpenBLAS "
      "(rebuild with CUDAGRAD_HAVE_OPENBLAS defined and -lopenblas)");
#endif
}

template void gemm_openblas<float>(Transpose, Transpose, int64_t, int64_t, int64_t, float, const float*,
                                   int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm_openblas<double>(Transpose, Transpose, int64_t, int64_t, int64_t, double, const double*,
                                    int64_t, const double*, int64_t, double, double*, int64_t);

}  // namespace cudagrad::cpu
