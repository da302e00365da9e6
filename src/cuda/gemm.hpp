// The GPU GEMM: one problem description, several implementations (registry.hpp, op "gemm").
// CUDA-free, so the op files (plain C++) can call it.
//
//   C = alpha * op(A) * op(B) + beta * C      op(X) = X or X^T, float32, row-major
//
// as cpu::gemm (src/cpu/gemm.hpp): element (r, c) of a stored matrix X is X[r * ldX + c];
//   A is stored m x k (lda >= k) or, transposed, k x m (lda >= m)
//   B is stored k x n (ldb >= n) or, transposed, n x k (ldb >= k)
//   C is stored m x n (ldc >= n)
// BLAS conventions: beta == 0 means C is only written, never read (it may hold NaN); alpha == 0
// or k == 0 means A and B are not read (C = beta * C). All pointers are device pointers on the
// current device; the work is queued on cuda::current_stream() and nothing waits for it.
//
// The implementations (kernels/gemm_*.cu, src/cuda/cublas_gemm.cu):
//   cublas            the vendor library; in every math mode (fp32, tf32, bf16)
//   naive             v1: one thread per element of C                    (gemm_simt.cu)
//   tiled             v2: 32 x 32 tiles of A and B in shared memory       (gemm_simt.cu)
//   register_blocked  v3: 128 x 128 block tile, 8 x 8 per thread          (gemm_simt.cu)
//   vectorized        v4: v3 with float4 loads, A transposed in shared    (gemm_vectorized.cu)
//   warp_tiled        v5: warp tiles, double-buffered shared memory       (gemm_warp_tiled.cu)
//   tensor_core       mma.sync on tensor cores: tf32 or bf16 math mode only (gemm_tensor_core.cu)
// The SIMT versions (v1-v5) compute in float32 whatever the math mode (never less accurate
// than the mode asks for); cublas and tensor_core follow it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cudagrad/registry.hpp"

namespace cudagrad::cuda {

struct GemmProblem {
    bool transpose_a = false, transpose_b = false;
    std::int64_t m = 0, n = 0, k = 0;
    const float* a = nullptr;
    std::int64_t lda = 0;
    const float* b = nullptr;
    std::int64_t ldb = 0;
    float* c = nullptr;
    std::int64_t ldc = 0;
    float alpha = 1.0f, beta = 0.0f;
};

// The implementation names, in the registry's order (cublas first).
const std::vector<std::string>& gemm_implementations();

// Checks the problem (sizes, leading dimensions, pointers: a cudagrad::Error naming the bad
// value), handles the empty cases, then runs `implementation` at `mode`. Throws for an unknown
// implementation and for tensor_core in fp32 mode.
void gemm(const GemmProblem& problem, const std::string& implementation, MathMode mode);
// The same at the current math_mode().
void gemm(const GemmProblem& problem, const std::string& implementation);
// implementation("gemm") at math_mode(): what the ops call.
void gemm_for_current_settings(const GemmProblem& problem);

// The versions themselves. They expect a problem gemm() has checked, with m, n, k >= 1 and
// alpha != 0; call them through gemm().
void gemm_v1_naive(const GemmProblem& problem);
void gemm_v2_tiled(const GemmProblem& problem);
void gemm_v3_register_blocked(const GemmProblem& problem);
void gemm_v4_vectorized(const GemmProblem& problem);
void gemm_v5_warp_tiled(const GemmProblem& problem);
void gemm_tensor_core(const GemmProblem& problem, MathMode mode);  // TF32 or BF16
void gemm_cublas(const GemmProblem& problem, MathMode mode);

// ---- small kernels around the GEMM (kernels/gemm_support.cu) ----

// C = beta * C over an m x n matrix with leading dimension ldc (beta == 0 writes zeros without
// reading C): the whole GEMM when alpha == 0 or k == 0.
void gemm_scale_output(float* c, std::int64_t m, std::int64_t n, std::int64_t ldc, float beta);

// destination[r * columns + c] = bfloat16(source[r * ld + c]), rounded to nearest even; the
// destination is packed (leading dimension = columns). bfloat16 values are 16-bit patterns.
void convert_to_bf16(const float* source, std::int64_t rows, std::int64_t columns, std::int64_t ld,
                     std::uint16_t* destination);

// y[r, c] = row[c] for r < rows: the bias of a linear layer, before the GEMM adds x W^T.
void broadcast_row(const float* row, std::int64_t rows, std::int64_t columns, float* y);

// sums[c] = sum over r of x[r * columns + c] (float32 accumulation): a linear layer's dbias.
void column_sums(const float* x, std::int64_t rows, std::int64_t columns, float* sums);

}  // namespace cudagrad::cuda
