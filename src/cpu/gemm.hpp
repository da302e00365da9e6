// cudagrad CPU GEMM: general matrix-matrix multiply, row-major.
//
// What it computes:
//     C = alpha * op(A) * op(B) + beta * C,     op(X) = X or X^T
// with op(A) of shape M x K, op(B) of shape K x N and C of shape M x N.
// All matrices are row-major: element (r, c) of a stored matrix X lives at
// X[r * ldx + c], so the leading dimension ldx is the distance between rows
// (ldx >= number of stored columns; ldx > columns addresses a sub-matrix).
//     A stored as M x K (lda >= K) when ta == No, as K x M (lda >= M) when Yes
//     B stored as K x N (ldb >= N) when tb == No, as N x K (ldb >= K) when Yes
//     C stored as M x N (ldc >= N)
// BLAS conventions: when beta == 0, C is only written, never read (it may
// hold NaN); when alpha == 0 or K == 0, A and B are not read.
//
// Three implementations with one signature:
//   gemm_reference  plain triple loop: the oracle the others are tested against
//   gemm_blocked    our own packed, cache-blocked, multi-threaded GEMM, with a
//                   micro-kernel picked for the CPU at run time (GemmKernel)
//   gemm_openblas   cblas_?gemm from OpenBLAS (needs CUDAGRAD_HAVE_OPENBLAS)
// gemm() dispatches to the current default: Blocked when the CPU has AVX2 and
// FMA (our AVX kernels beat Debian's OpenBLAS 0.3.21, which misdetects recent
// Xeons and falls back to SSE3 kernels: docs/gemm-cpu.md), otherwise OpenBLAS
// if built in, otherwise Blocked. The environment variable
// CUDAGRAD_GEMM=reference|blocked|openblas or set_gemm_impl() overrides it.
//
// gemm_blocked's micro-kernel: the best the CPU supports (avx512, else avx2,
// else portable); CUDAGRAD_GEMM_KERNEL=portable|avx2|avx512 or
// set_gemm_kernel() overrides it, e.g. to test or benchmark each variant.
// Asking for a kernel the CPU cannot run throws std::runtime_error rather
// than crashing later with an illegal instruction.
//
// Threading: gemm_blocked uses parallel_for (parallel.hpp); OpenBLAS runs its
// own thread pool sized to num_threads(). Call gemm() from the main thread:
// called from inside a parallel_for body, the blocked GEMM runs serially and
// OpenBLAS would start a second set of threads on already-busy cores.
//
// Bad arguments (negative sizes, leading dimension too small, null pointer
// with non-empty matrices) throw std::invalid_argument naming the function
// and the offending values.
#pragma once

#include <cstdint>
#include <string>

namespace cudagrad::cpu {

enum class Transpose { No, Yes };
enum class GemmImpl { Reference, Blocked, OpenBlas };

template <typename T>
void gemm_reference(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                    int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

template <typename T>
void gemm_blocked(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// Throws std::runtime_error when built without CUDAGRAD_HAVE_OPENBLAS.
template <typename T>
void gemm_openblas(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                   int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// Dispatches to gemm_impl().
template <typename T>
void gemm(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// Selecting OpenBlas when !openblas_available() throws std::runtime_error.
void set_gemm_impl(GemmImpl impl);
// Current default; first call reads CUDAGRAD_GEMM (may throw, see above).
GemmImpl gemm_impl();
// What gemm_impl() starts with when CUDAGRAD_GEMM is unset: Blocked if the
// CPU has AVX2+FMA, else OpenBlas if built in, else Blocked.
GemmImpl automatic_gemm_impl();
bool openblas_available();
// "reference", "blocked" or "openblas".
const char* gemm_impl_name(GemmImpl impl);
// Inverse of gemm_impl_name; std::invalid_argument naming any other text.
GemmImpl gemm_impl_from_name(const std::string& name);

// gemm_blocked's micro-kernels (src/cpu/gemm_microkernel*.{hpp,cpp}).
enum class GemmKernel { Portable, Avx2, Avx512 };

// Whether this CPU can run the kernel (Portable: always; Avx2: AVX2 and FMA;
// Avx512: AVX-512F).
bool gemm_kernel_supported(GemmKernel kernel);
// Avx512 if supported, else Avx2 if supported, else Portable.
GemmKernel best_gemm_kernel();
// Throws std::runtime_error naming the kernel when the CPU lacks it.
void set_gemm_kernel(GemmKernel kernel);
// Current kernel; first call reads CUDAGRAD_GEMM_KERNEL (may throw: unknown
// name -> std::invalid_argument, unsupported kernel -> std::runtime_error).
GemmKernel gemm_kernel();
// "portable", "avx2" or "avx512".
const char* gemm_kernel_name(GemmKernel kernel);
// Inverse of gemm_kernel_name; std::invalid_argument naming any other text.
GemmKernel gemm_kernel_from_name(const std::string& name);

namespace detail {
// Shared argument check of all implementations; `function` names the caller
// in the error message.
void check_gemm_args(const char* function, Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K,
                     const void* A, int64_t lda, const void* B, int64_t ldb, const void* C, int64_t ldc);
}  // namespace detail

}  // namespace cudagrad::cpu
